"""coachflow's command line (``./build.sh normalize|rules|send ...``): tooling for rule authors and
operators, never part of the Lambda image.

    normalize --source VENDOR|auto [--tenant T] FILE...    one JSON line per outcome
    tenant --tenant T [--webhook-url URL] [--producer ID]... [--coaching FILE] [--channels FILE]
                                                           show or set a tenant's webhook, producers, coaching, channels
    rules validate DIR|FILE                                exit 1 naming every invalid rule
    rules test DIR|FILE [--filter S] [--junit FILE]        exit 1 naming every failing rule test, and why
    rules push --tenant T DIR|FILE [--webhook-url URL]     validate, then store (embedded AWS or real)
    send --tenant T --source VENDOR|auto FILE...           put raw payloads on the raw-events queue
    redrive raw-events-dlq|dead-notifications              what waits in a dead-letter queue, through again

Exit codes: 0 success, 1 invalid rules or failing tests, 2 usage errors, 141 (128 + SIGPIPE) when
the reader of the output closes it early (``normalize ... | head -1``), without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml

from cli import checks, redrive
from cli.packs import RuleFile, RuleFileError, load_rule_files, load_rules, read_document, resolve_tenant
from cli.rule_tests import junit, run
from handlers import channels, tenant_settings, vendors
from handlers.coaching import Coaching, CoachingError, parse
from handlers.ingest import AUTO, envelope, normalize_payload
from handlers.rules.model import Rule
from handlers.rules.ruleset import over_budget
from handlers.rules.store import RuleStore
from handlers.tenancy import TENANT_ID

ROOT = Path(__file__).resolve().parent.parent


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def _tenant(value: str) -> str:
    if not TENANT_ID.match(value):
        raise argparse.ArgumentTypeError(f"invalid tenant id {value!r}: 1-32 lowercase letters, digits or dashes")
    return value


def _instance_dir() -> Path:
    return ROOT / ".coachflow" / os.environ.get("COACHFLOW_INSTANCE", "default")


def _local_outputs() -> dict[str, Any]:
    """Outputs of the local environment started by './build.sh up' (for defaults)."""
    path = _instance_dir() / "outputs.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _endpoint(args: argparse.Namespace) -> str | None:
    """Where AWS calls go: --endpoint, else AWS_ENDPOINT_URL, else the embedded AWS of './build.sh
    up' when it runs, but only when no table was named: a table named with --table is a real
    environment's (the local one's tables are found without naming them), so naming one never
    lands on the embedded AWS by accident because 'up' happens to be running."""
    if args.endpoint:
        return str(args.endpoint)
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    if getattr(args, "table", None):
        return None
    port_file = _instance_dir() / "endpoint"
    return port_file.read_text().strip() if port_file.exists() else None


def _session(args: argparse.Namespace) -> tuple[Any, str | None]:
    endpoint = _endpoint(args)
    print(f"target: {'the embedded AWS at ' + endpoint if endpoint else 'AWS (the default credentials and region)'}", file=sys.stderr)
    if endpoint:  # the embedded AWS accepts any credentials
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=os.environ.get("AWS_REGION", "us-east-1"))  # fmt: skip
    else:
        session = boto3.session.Session()
    return session, endpoint


# -- normalize ----------------------------------------------------------------------------------------


def cmd_normalize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            return _usage(parser, f"no such file: {name}")
    for name in args.files:
        # The file as a queue message would carry it: no newline translation (a bare "\r" inside a
        # field stays there), and invalid UTF-8 bytes kept as lone surrogates, for ingest to reject.
        body = Path(name).read_bytes().decode("utf-8", "surrogateescape")
        for outcome in normalize_payload(body, args.source, args.tenant):
            print(json.dumps(outcome.summary(), ensure_ascii=False))
    return 0


# -- rules --------------------------------------------------------------------------------------------


def _load(target: Path) -> list[RuleFile] | None:
    try:
        return load_rule_files(target)
    except RuleFileError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return None


def cmd_rules_validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.target.exists():
        return _usage(parser, f"no such file or directory: {args.target}")
    found = _load(args.target)
    if found is None:
        return 1
    for rule_file in found:
        print(f"valid: {rule_file.origin}: {len(rule_file.rules)} rules")
    return 0


def cmd_rules_test(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.target.exists():
        return _usage(parser, f"no such file or directory: {args.target}")
    found = _load(args.target)
    if found is None:
        return 1
    suites = []
    for rule_file in found:
        results = run(rule_file.rules, rule_file.bases, args.filter)
        suites.append((rule_file.origin, results))
        for result in results:
            if not result.passed:
                print(f"FAIL {rule_file.origin}: {result.rule_id}: {result.name}: expected {result.expected}, got {result.actual}")
                print(f"     {result.detail}")
        untested = [r.rule_id for r in rule_file.rules if not r.tests]
        if untested and args.filter is None:
            print(f"note: {rule_file.origin}: rules without tests: {', '.join(untested)}")
    if args.junit:
        args.junit.write_bytes(junit(suites))
    total, failed = sum(len(r) for _, r in suites), sum(not t.passed for _, r in suites for t in r)
    if args.filter is not None and not total:
        print(f"no rule test matches --filter {args.filter!r}", file=sys.stderr)
        return 1
    print(f"{total - failed}/{total} rule tests passed")
    return 1 if failed else 0


def _tenant_rules(target: Path, tenant: str) -> list[Rule] | None:
    try:
        files = sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if target.is_dir() else [target]
        for path in files:
            doc = read_document(path)
            if isinstance(doc, dict) and doc.get("tenant") == tenant:
                return resolve_tenant(path)[1]
        rules = [r for origin, group in load_rules(target) if "(tenant " not in origin for r in group]
    except RuleFileError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return None
    return rules


def cmd_rules_push(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.target.exists():
        return _usage(parser, f"no such file or directory: {args.target}")
    rules = _tenant_rules(args.target, args.tenant)
    if rules is None:
        return 1
    if not rules:
        print(f"invalid: {args.target}: no rules for tenant {args.tenant}", file=sys.stderr)
        return 1
    ids = [r.rule_id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        print(f"invalid: duplicate rule ids: {', '.join(duplicates)}", file=sys.stderr)
        return 1
    # Each file was checked on its own; the tenant's rules from several files together may be over.
    problem = over_budget(rules)
    if problem is not None:
        print(f"invalid: {args.target}: {problem}", file=sys.stderr)
        return 1
    table_name = args.table or os.environ.get("COACHFLOW_RULES_TABLE") or _local_outputs().get("rules_table")
    if not table_name:
        return _usage(parser, "no rules table: pass --table (or start the local environment with './build.sh up')")
    session, endpoint = _session(args)
    table = session.resource("dynamodb", endpoint_url=endpoint).Table(table_name)
    result = RuleStore(table).push(args.tenant, rules, webhook_url=args.webhook_url)
    print(json.dumps({**result, "table": table_name}))
    return 0


# -- tenant -------------------------------------------------------------------------------------------


def _settings_file(path: Path) -> Any:
    """A settings file's document (YAML or JSON), or ValueError naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot be read: {exc}") from None


def _coaching(path: Path) -> Coaching:
    """A coaching settings file: ``escalation`` and/or ``frequency_cap``; empty clears."""
    try:
        return parse(_settings_file(path))
    except (CoachingError, ValueError) as exc:
        raise CoachingError(f"{exc}" if str(exc).startswith(str(path)) else f"{path}: {exc}") from None


def _channels(path: Path) -> channels.Channels:
    """A channel settings file (``handlers.channels``), its templates' placeholders checked as a
    rule's are (an unknown one is an error with the nearest known one)."""
    try:
        configured = channels.parse(_settings_file(path))
    except (channels.ChannelsError, ValueError) as exc:
        raise channels.ChannelsError(f"{exc}" if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    problems = [
        f"templates.{name}.{part}: {problem}"
        for name, template in configured.templates.items()
        for part, text in template.model_dump(exclude_none=True).items()
        for problem in checks.template_problems(text)
    ]
    if problems:
        raise channels.ChannelsError(f"{path}: " + "; ".join(problems))
    return configured


def cmd_tenant(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    coaching = configured = None
    for given in (args.coaching, args.channels):
        if given is not None and not given.is_file():
            return _usage(parser, f"no such file: {given}")
    try:
        coaching = _coaching(args.coaching) if args.coaching is not None else None
        configured = _channels(args.channels) if args.channels is not None else None
    except (CoachingError, channels.ChannelsError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    table_name = args.table or os.environ.get("COACHFLOW_RULES_TABLE") or _local_outputs().get("rules_table")
    if not table_name:
        return _usage(parser, "no rules table: pass --table (or start the local environment with './build.sh up')")
    session, endpoint = _session(args)
    table = session.resource("dynamodb", endpoint_url=endpoint).Table(table_name)
    tenant_settings.update(table, args.tenant, webhook_url=args.webhook_url, producers=args.producer, coaching=coaching,
                           channels=configured)  # fmt: skip
    settings = tenant_settings.read(table, args.tenant)
    try:
        shown: Any = settings.coaching().stored()
    except CoachingError as exc:  # edited by hand into invalid settings: show why, and let them be replaced
        shown = {"invalid": str(exc)}
    try:
        current = settings.channels()
        shown_channels: Any = current.stored() if current else None
    except channels.ChannelsError as exc:
        shown_channels = {"invalid": str(exc)}
    print(json.dumps({"tenant": args.tenant, "webhook_url": settings.webhook_url, "producers": list(settings.producers),
                      "coaching": shown, "channels": shown_channels, "ruleset_version": settings.ruleset_version,
                      "table": table_name}))  # fmt: skip
    return 0


# -- redrive -----------------------------------------------------------------------------------------

REDRIVE_QUEUES = ("raw-events-dlq", "dead-notifications")


def cmd_redrive(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    outputs = _local_outputs()
    session, endpoint = _session(args)
    sqs = session.client("sqs", endpoint_url=endpoint)
    if args.queue == "dead-notifications":
        queue_url = args.queue_url or outputs.get("dead_notifications_queue_url")
        table_name = args.table or outputs.get("state_table")
        if not queue_url or not table_name:
            return _usage(parser, "pass --queue-url and --table (or start the local environment with './build.sh up')")
        table = session.resource("dynamodb", endpoint_url=endpoint).Table(table_name)
        print(json.dumps(redrive.requeue_notifications(sqs, table, queue_url, args.tenant)))
        return 0
    if args.tenant:
        return _usage(parser, "--tenant applies to dead-notifications only: a raw-events message is replayed whole")
    queue_url = args.queue_url or outputs.get("raw_events_dlq_url")
    function = args.function or (outputs.get("function_names") or {}).get("normalize")
    if not queue_url or not function:
        return _usage(parser, "pass --queue-url and --function (or start the local environment with './build.sh up')")
    # The queue the messages came from (for their eventSourceARN), as SQS knows it.
    sources = sqs.list_dead_letter_source_queues(QueueUrl=queue_url).get("queueUrls") or [queue_url]
    source_arn = sqs.get_queue_attributes(QueueUrl=sources[0], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    depth = _depth(sqs, queue_url)
    try:
        result = redrive.replay_raw_events(sqs, session.client("lambda", endpoint_url=endpoint), queue_url, function, source_arn,
                                           sqs.meta.region_name)  # fmt: skip
    except RuntimeError as exc:
        print(f"redrive: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"queue": queue_url, "depth_before": depth, **result.as_dict(), "depth_after": _depth(sqs, queue_url)}))
    return 1 if result.failed else 0


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return sum(int(v) for v in attributes["Attributes"].values())


# -- send ---------------------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for name in args.files:
        if not Path(name).is_file():
            return _usage(parser, f"no such file: {name}")
    queue_url = args.queue_url or os.environ.get("COACHFLOW_RAW_EVENTS_QUEUE_URL") or _local_outputs().get("raw_events_queue_url")
    if not queue_url:
        return _usage(parser, "no queue: pass --queue-url (or start the local environment with './build.sh up')")
    session, endpoint = _session(args)
    sqs = session.client("sqs", endpoint_url=endpoint)
    for name in args.files:
        body = Path(name).read_text(encoding="utf-8")
        response = sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=envelope(args.tenant, args.source))
        print(json.dumps({"file": name, "message_id": response["MessageId"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh", description="coachflow command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sources = [*vendors.names(), AUTO]

    p = sub.add_parser("normalize", help="normalize raw vendor payloads; one JSON line per outcome")
    p.add_argument("--source", required=True, choices=sources, help="vendor name, or auto to detect it")
    p.add_argument("--tenant", type=_tenant, default="cli", help="tenant id the events belong to (default: cli)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_normalize)

    rules = sub.add_parser("rules", help="validate, test and push tenant rules").add_subparsers(dest="rules_command", required=True)
    p = rules.add_parser("validate", help="validate rule files")
    p.add_argument("target", type=Path, metavar="DIR|FILE")
    p.set_defaults(func=cmd_rules_validate)
    p = rules.add_parser("test", help="run every rule's tests")
    p.add_argument("target", type=Path, metavar="DIR|FILE")
    p.add_argument("--filter", metavar="SUBSTRING", help="only the tests whose rule id or test name contains it")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    p.set_defaults(func=cmd_rules_test)
    p = rules.add_parser("push", help="validate a tenant's rules and store them")
    p.add_argument("--tenant", type=_tenant, required=True)
    p.add_argument("target", type=Path, metavar="DIR|FILE")
    p.add_argument("--table", help="rules table (default: the local environment's)")
    p.add_argument("--endpoint", help="AWS endpoint URL (default: the local environment's, if running)")
    p.add_argument("--webhook-url", help="set the tenant's webhook URL too")
    p.set_defaults(func=cmd_rules_push)

    p = sub.add_parser("tenant", help="show or change a tenant's settings: its webhook, producers, coaching, channels")
    p.add_argument("--tenant", type=_tenant, required=True)
    p.add_argument("--webhook-url", help="where the tenant's notifications go")
    p.add_argument("--producer", action="append", metavar="SENDER_ID",
                   help="an SQS sender id that may send the tenant's events (AIDA..., or AROA...:* for any session "
                        "of a role); repeat it; the list replaces the registered one")  # fmt: skip
    p.add_argument("--coaching", type=Path, metavar="FILE",
                   help="YAML or JSON with the escalation ladder (escalation) and/or the frequency cap (frequency_cap); "
                        "replaces the tenant's; an empty document removes them")  # fmt: skip
    p.add_argument("--channels", type=Path, metavar="FILE",
                   help="YAML or JSON with the tenant's channels (email, slack, teams, webhook, learning), their default "
                        "and templates (docs/channels.md); replaces the tenant's. Credentials go to Secrets Manager, never here")  # fmt: skip
    p.add_argument("--table", help="rules table (default: the local environment's)")
    p.add_argument("--endpoint", help="AWS endpoint URL (default: the local environment's, if running)")
    p.set_defaults(func=cmd_tenant)

    p = sub.add_parser("redrive", help="send what waits in a dead-letter queue through the pipeline again")
    p.add_argument("queue", choices=REDRIVE_QUEUES,
                   help="raw-events-dlq: replay failed messages through normalize (rejected records stay); "
                        "dead-notifications: back in the ledger, due now")  # fmt: skip
    p.add_argument("--queue-url", help="the queue (default: the local environment's)")
    p.add_argument("--function", help="raw-events-dlq: the normalize function (default: the local environment's)")
    p.add_argument("--table", help="dead-notifications: the state table (default: the local environment's)")
    p.add_argument("--tenant", type=_tenant, help="dead-notifications: only this tenant's (default: all)")
    p.add_argument("--endpoint", help="AWS endpoint URL (default: the local environment's, if running)")
    p.set_defaults(func=cmd_redrive)

    p = sub.add_parser("send", help="send raw vendor payloads to the raw-events queue")
    p.add_argument("--tenant", type=_tenant, required=True)
    p.add_argument("--source", default=AUTO, choices=sources)
    p.add_argument("--queue-url", help="raw-events queue (default: the local environment's)")
    p.add_argument("--endpoint", help="AWS endpoint URL (default: the local environment's, if running)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_send)

    args = parser.parse_args(argv)
    try:
        code: int = args.func(args, parser)
        sys.stdout.flush()  # a reader that went away shows here at the latest, not in the interpreter's last flush
    except BrokenPipeError:
        # The reader closed the pipe (`normalize ... | head -1`): it wants no more, which is no error
        # to report. Point stdout at /dev/null so the interpreter's last flush cannot fail again, and
        # exit as a process killed by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
