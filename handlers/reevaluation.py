"""Re-evaluation of a tenant's recent events when its rule set changed, and the buffer it reads.

CheckEventsForRuleMatch writes each batch's events to the tenant's recent-events buffer
(``buffer``, keys and bodies: ``handlers.recent_events``) before evaluating it. In re-evaluation
mode (the tenant's schedule, the sweep), ``Reevaluation.run`` re-runs, over the buffered batches
evaluated under another rule-set version, the rules that are new or changed since (unchanged rules
already decided those events), through the same ``evaluate`` path as a batch: thresholds,
suppression, shadow mode, frequency cap and escalation ladder decide the new matches.

Bookkeeping: one marker per tenant in the state table, ``reeval#<tenant>`` / ``ruleset``: the
version last re-run (``version``), how far (``cursor``: the last buffer key got past), whether it is
finished (``done``), and a lease (``lease_until``) so that two re-evaluations of one tenant at once
(its schedule and the sweep, a schedule delivered twice) do not both re-run the buffer: a run is
claimed with a conditional write on the marker's sequence number ``seq``. Correctness does not rest
on it: notification ids are (tenant, rule, event uid), every decision is replayable, and the
ledger's claim delivers each notification once. While a re-run is unfinished (a new version was
noticed, the bound was reached, the deadline came, the re-evaluating function died) the marker
carries ``due_shard``/``due_at`` like an unfinished notification, so the sweep's sparse index finds
the tenant (``ledger.due_tenants``) and a re-evaluation continues where the last one stopped.

The race: a batch evaluated under version N whose buffer object is written after the push of N+1
would be missed by a re-run of N+1 that listed the buffer before the write. So the batch is written
*before* its evaluation, and the version read again after the write (``buffer_then_confirm`` in
``check_rules``): if it is still N, any re-run of a later version lists after the write; if it
changed, the batch is evaluated under the new version instead.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from handlers import recent_events
from handlers.dynamo import Table, conditional
from handlers.ledger import due_shard
from handlers.rules.evaluate import Evaluation
from handlers.rules.model import Rule
from handlers.rules.ruleset import RuleSet, changed_rules, fingerprints

PARTITION_PREFIX = "reeval#"
SORT_KEY = "ruleset"
LEASE_SECONDS = 960  # longer than a Lambda function can run (Terraform passes the function's timeout + 60)
MARKER_RETENTION = 90 * 86400  # a tenant that sends nothing for 90 days loses its marker: a re-run then is merely redundant
RESERVE_MS = 15_000  # stop starting batches when less remains: one batch's evaluation, and the output


class Buffer(Protocol):
    """The claims bucket, as the buffer uses it (``handlers.aws.Bucket``)."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str, start_after: str = "") -> Iterable[tuple[str, float]]: ...


def buffer(store: Buffer, tenant: str, batch_id: str, ruleset: RuleSet, events: list[dict[str, Any]]) -> str | None:
    """Keep a batch's events (the tenant's own only) for re-evaluation; its key, or None when empty."""
    own = [e for e in events if (e.get("metadata") or {}).get("tenant_uid") == tenant]
    if not own:
        return None
    object_key = recent_events.key(tenant, batch_id, ruleset.version, own)
    store.put(object_key, recent_events.encode(ruleset.version, fingerprints(ruleset), own), "application/json")
    return object_key


EvaluateRules = Callable[[list[Rule], list[dict[str, Any]]], Evaluation]


@dataclass
class Rerun:
    """What one re-evaluation re-ran."""

    status: str  # "ran", "up_to_date", "busy" (another re-evaluation holds the lease), "no_rules"
    version: str
    matches: list[dict[str, Any]] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    events: int = 0
    more: bool = False  # stopped by the bound or the deadline; the next re-evaluation continues
    stopped_by: str | None = None  # "max_events" or "deadline" when more
    unreadable: int = 0  # buffered batches gone (expired) or unreadable when read: skipped

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "version": self.version,
            "batches": self.batches,
            "events": self.events,
            "more": self.more,
        }
        if self.stopped_by:
            out["stopped_by"] = self.stopped_by
        if self.unreadable:
            out["unreadable"] = self.unreadable
        return out


class Reevaluation:
    """One tenant's re-run of new and changed rules over its buffered events."""

    def __init__(
        self,
        table: Table,
        store: Buffer,
        tenant: str,
        clock: Callable[[], float] = time.time,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self.table = table
        self.store = store
        self.tenant = tenant
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.key = {"pk": f"{PARTITION_PREFIX}{tenant}", "sk": SORT_KEY}
        self.shard = due_shard(hashlib.sha256(tenant.encode("utf-8")).hexdigest())

    def marker(self) -> dict[str, Any]:
        return self.table.get_item(Key=self.key, ConsistentRead=True).get("Item") or {}

    def notice(self, version: str) -> bool:
        """Mark the tenant due for a re-evaluation when ``version`` was not re-run yet (a function
        loaded a rule set it had not seen): the sweep then starts one, even for a tenant without a
        schedule of its own. One conditional write, only when the version changed."""
        now = int(self.clock())
        return (
            conditional(
                self.table.update_item,
                Key=self.key,
                UpdateExpression="SET due_shard = :shard, due_at = :now, expires_at = :exp",
                ConditionExpression="attribute_not_exists(pk) OR version <> :v",
                ExpressionAttributeValues={":shard": self.shard, ":now": now, ":v": version, ":exp": now + MARKER_RETENTION},
            )
            is not None
        )

    def _claim(self, marker: dict[str, Any], version: str) -> tuple[int, str] | None:
        """Take the lease on re-running ``version``: (the run's sequence number, the cursor to
        start after), or None when another re-evaluation holds it or got here first."""
        now = int(self.clock())
        same = marker.get("version") == version
        cursor = str(marker.get("cursor", "")) if same else ""  # a new version starts over
        seq = int(marker.get("seq", 0))
        if same and int(marker.get("lease_until", 0)) > now:
            return None
        lease = now + self.lease_seconds
        taken = conditional(
            self.table.update_item,
            Key=self.key,
            # due at the lease's end: should this function die, the sweep continues the run then
            UpdateExpression="SET version = :v, #cursor = :c, done = :f, seq = :next, lease_until = :lease, due_shard = :shard, "
            "due_at = :lease, expires_at = :exp",
            ConditionExpression="attribute_not_exists(seq) OR seq = :seq",
            ExpressionAttributeNames={"#cursor": "cursor"},  # a reserved word
            ExpressionAttributeValues={
                ":v": version,
                ":c": cursor,
                ":f": False,
                ":next": seq + 1,
                ":seq": seq,
                ":lease": lease,
                ":shard": self.shard,
                ":exp": now + MARKER_RETENTION,
            },
        )
        return None if taken is None else (seq + 1, cursor)

    def _release(self, seq: int, cursor: str, done: bool) -> None:
        """Record how far the run got; unfinished, it stays due now, for the next re-evaluation."""
        now = int(self.clock())
        values: dict[str, Any] = {":c": cursor, ":now": now, ":seq": seq}
        if done:
            update = "SET #cursor = :c, done = :t, finished_at = :now REMOVE lease_until, due_shard, due_at"
            values[":t"] = True
        else:
            update = "SET #cursor = :c, done = :f, due_shard = :shard, due_at = :now REMOVE lease_until"
            values.update({":f": False, ":shard": self.shard})
        conditional(
            self.table.update_item,
            Key=self.key,
            UpdateExpression=update,
            ConditionExpression="seq = :seq",  # unless another run took over (our lease had expired)
            ExpressionAttributeNames={"#cursor": "cursor"},
            ExpressionAttributeValues=values,
        )

    def run(
        self,
        ruleset: RuleSet,
        evaluate_rules: EvaluateRules,
        time_left_ms: Callable[[], int],
        max_events: int,
        retention_seconds: int,
    ) -> Rerun:
        """Re-run the rules new or changed since each buffered batch was evaluated, oldest batches
        first, at most ``max_events`` events and while time is left; the matches to notify."""
        version = ruleset.version
        marker = self.marker()
        if marker.get("version") == version and marker.get("done"):
            return Rerun("up_to_date", version)
        if not ruleset.rules:
            return Rerun("no_rules", version)
        claimed = self._claim(marker, version)
        if claimed is None:
            return Rerun("busy", version)
        seq, cursor = claimed
        listing = self.store.keys(recent_events.prefix(self.tenant), cursor)
        chosen = recent_events.plan(self.tenant, listing, version, cursor, self.clock() - retention_seconds, max_events)
        result = Rerun("ran", version, more=chosen.more, stopped_by="max_events" if chosen.more else None)
        for position, batch in enumerate(chosen.batches):
            if position and time_left_ms() < RESERVE_MS:
                # the rest waits for the next re-evaluation; this one resumes after the last batch done
                result.more, result.stopped_by = True, "deadline"
                self._release(seq, chosen.batches[position - 1].key, done=False)
                return result
            try:
                evaluated_with, events = recent_events.decode(self.store.get(batch.key))
            except (ValueError, ClientError) as exc:
                # expired between listing and reading, or not a batch: skipped, never retried forever
                if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
                result.unreadable += 1
                continue
            rules = changed_rules(ruleset, evaluated_with)
            if rules:
                evaluation = evaluate_rules(rules, sorted(events, key=_event_time))
                result.matches.extend(evaluation.matches)
                result.decisions.update(evaluation.decisions)
            result.batches += 1
            result.events += len(events)
        self._release(seq, chosen.cursor, done=not chosen.more)
        return result


def _event_time(event: dict[str, Any]) -> int:
    at = event.get("time")
    return at if isinstance(at, int) and not isinstance(at, bool) else 0
