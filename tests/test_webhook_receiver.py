"""The webhook receiver and its fault plans, over real HTTP on 127.0.0.1.

The client is the project's guarded delivery (handlers.webhook.post), so each case also shows what
delivery makes of the fault: a DeliveryError for an error, a hang, a drip longer than the deadline,
a redirect or a receiver that is down; the 2xx otherwise. Durations are short (1-2 s) and the
assertions leave wide margins: the tests share a small machine.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from emulator.stack import ROOT, stop_group
from emulator.webhook_receiver import FaultPlan, FaultPlanError, make_server, read_record, summary
from handlers import webhook
from handlers.webhook import DeliveryError

LOCAL = webhook.Policy(allow_http=True, allowed_networks=(ip_network("127.0.0.0/8"),))


def post(url: str, notification_id: str = "n-1", budget: float = 5.0) -> int:
    body = json.dumps({"notification_id": notification_id, "text": "coaching"}).encode()
    headers = {"Content-Type": "application/json", "X-Coachflow-Notification-Id": notification_id}
    return webhook.post(url, body, headers, deadline=time.monotonic() + budget, policy=LOCAL)


def outcome(url: str, notification_id: str = "n-1", budget: float = 5.0) -> str:
    """The status delivery got, or the DeliveryError's message."""
    try:
        return str(post(url, notification_id, budget))
    except DeliveryError as exc:
        return str(exc)


@contextmanager
def receiver(tmp_path: Path, plan: FaultPlan | None = None) -> Iterator[tuple[str, Path]]:
    """A receiver in this process: (base URL, record file)."""
    record = tmp_path / f"received-{time.monotonic_ns()}.jsonl"
    server = make_server(0, record, plan)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", record
    finally:
        server.shutdown()
        server.server_close()  # ends hangs and drips still going
        thread.join(10)


def wait_for(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


# The plan


def test_a_full_plan_reads_as_written():
    plan = FaultPlan.from_json(
        '{"seed": 7, "error_share": 0.05, "error_status": 500, "hang_share": 0.01, "hang_seconds": 30, "drip_share": 0.01,'
        ' "drip_seconds": 20, "redirect_share": 0.01, "down": [{"after": 10, "for": 5}]}'
    )
    assert (plan.seed, plan.error_share, plan.error_status, plan.hang_share, plan.hang_seconds) == (7, 0.05, 500, 0.01, 30)
    assert (plan.drip_share, plan.drip_seconds, plan.redirect_share, plan.down_spans()) == (0.01, 20, 0.01, [(10, 15)])
    assert FaultPlan.from_json("{}") == FaultPlan()  # every key optional; the empty plan does nothing
    assert FaultPlan().choose(0.0) is None


@pytest.mark.parametrize(
    ("plan", "named"),
    [
        ('{"error_shares": 0.1}', "'error_shares'"),
        ('{"error_share": 1.5}', "error_share"),
        ('{"hang_share": -0.1}', "hang_share"),
        ('{"drip_share": true}', "drip_share"),
        ('{"redirect_share": "0.1"}', "redirect_share"),
        ('{"error_share": NaN}', "error_share"),
        ('{"error_share": 0.6, "redirect_share": 0.6}', "shares add up to 1.2"),
        ('{"hang_seconds": -1}', "hang_seconds"),
        ('{"drip_seconds": -0.5}', "drip_seconds"),
        ('{"error_status": 200}', "error_status"),
        ('{"error_status": 302}', "error_status"),
        ('{"error_status": "500"}', "error_status"),
        ('{"seed": 1.5}', "seed"),
        ('{"down": {"after": 1, "for": 1}}', "down must be a list"),
        ('{"down": [{"after": -1, "for": 1}]}', "down[0].after"),
        ('{"down": [{"after": 1, "for": 1}, {"after": 1, "for": -2}]}', "down[1].for"),
        ('{"down": [{"after": 1}]}', "down[0].for is missing"),
        ('{"down": [{"after": 1, "for": 1, "until": 3}]}', "down[0]: unknown key 'until'"),
        ('{"down": [5]}', "down[0] must be"),
        ("[]", "must be a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_an_invalid_plan_is_refused_naming_its_key(plan: str, named: str):
    with pytest.raises(FaultPlanError) as caught:
        FaultPlan.from_json(plan)
    assert named in str(caught.value)


def test_down_windows_merge_when_they_overlap():
    plan = FaultPlan.from_json(
        '{"down": [{"after": 5, "for": 2}, {"after": 1, "for": 1}, {"after": 6, "for": 3}, {"after": 20, "for": 0}]}'
    )
    assert plan.down_spans() == [(1, 2), (5, 9)]


# Without a plan: as before


def test_without_a_plan_every_post_is_answered_204_or_by_its_status_path(tmp_path: Path):
    with receiver(tmp_path) as (url, record):
        assert post(f"{url}/hooks/acme", "n-1") == 204
        assert "answered HTTP 503" in outcome(f"{url}/status/503/hooks/acme", "n-2")
        with pytest.raises(urllib.error.HTTPError) as caught:  # no do_GET before: still not implemented, not recorded
            urllib.request.urlopen(f"{url}/hooks/acme", timeout=5)
        assert caught.value.code == 501
    first, second = read_record(record)
    assert (first["path"], first["status"], first["fault"], first["answered"], first["notification_id"]) == (
        "/hooks/acme",
        204,
        None,
        True,
        "n-1",
    )
    assert json.loads(first["body"]) == {"notification_id": "n-1", "text": "coaching"}
    assert first["headers"]["x-coachflow-notification-id"] == "n-1" and first["sequence"] is None
    assert (second["status"], second["fault"]) == (503, None)


# Each fault


def test_error_fault_answers_the_plans_status(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(error_share=1, error_status=503)) as (url, record):
        assert outcome(f"{url}/hooks/acme") == f"webhook {url} answered HTTP 503"
    (entry,) = read_record(record)
    assert (entry["status"], entry["fault"], entry["notification_id"], entry["sequence"], entry["answered"]) == (
        503,
        "error",
        "n-1",
        1,
        True,
    )


def test_hang_fault_is_cut_by_the_clients_deadline(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(hang_share=1, hang_seconds=30)) as (url, record):
        started = time.monotonic()
        message = outcome(f"{url}/hooks/acme", budget=1)
        elapsed = time.monotonic() - started
        assert message == f"webhook {url} did not complete within the delivery deadline"
        assert 0.9 <= elapsed < 10  # the deadline ended it, not the receiver (30 s)
        (entry,) = read_record(record)  # written when the hang began
        assert (entry["status"], entry["fault"], entry["answered"], entry["notification_id"]) == (None, "hang", False, "n-1")


def test_hang_fault_ends_with_the_connection_closed_unanswered(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(hang_share=1, hang_seconds=1)) as (url, _):
        started = time.monotonic()
        message = outcome(f"{url}/hooks/acme", budget=10)
        assert "RemoteDisconnected" in message and 0.9 <= time.monotonic() - started < 8


def test_drip_fault_longer_than_the_deadline_fails_delivery(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(drip_share=1, drip_seconds=30)) as (url, record):
        started = time.monotonic()
        message = outcome(f"{url}/hooks/acme", budget=1)
        assert message == f"webhook {url} did not complete within the delivery deadline" and time.monotonic() - started < 10
        # The drip notices the client gone at its next byte (every half second here) and records it.
        (entry,) = wait_for(lambda: read_record(record))
    assert (entry["status"], entry["fault"], entry["answered"]) == (204, "drip", False)
    assert summary(record)["acknowledged"] == 0


def test_drip_fault_spreads_the_answer_over_its_seconds(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(drip_share=1, drip_seconds=1.5)) as (url, record):
        started = time.monotonic()
        assert post(f"{url}/hooks/acme", budget=15) == 204  # a patient client gets the answer in the end
        assert 1.3 <= time.monotonic() - started < 12
        (entry,) = wait_for(lambda: read_record(record))
    assert (entry["status"], entry["fault"], entry["answered"]) == (204, "drip", True)
    assert summary(record)["acknowledged"] == 1


def test_drip_fault_drips_the_status_of_a_status_path(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(drip_share=1, drip_seconds=0.5)) as (url, record):
        assert "answered HTTP 500" in outcome(f"{url}/status/500/hooks/acme")
        (entry,) = wait_for(lambda: read_record(record))
    assert (entry["status"], entry["fault"], entry["answered"]) == (500, "drip", True)


def test_redirect_fault_is_not_followed_by_delivery_and_a_following_client_shows(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(redirect_share=1)) as (url, record):
        message = outcome(f"{url}/hooks/acme?token=s3cret")
        assert (
            message == f"webhook {url} answered HTTP 302, a redirect to '/redirected/hooks/acme?token=s3cret': redirects are not followed"
        )
        assert [e["path"] for e in read_record(record)] == ["/hooks/acme?token=s3cret"]  # no second request: not followed

        # urllib follows a 302 (with a GET): the second request is recorded, answered, not faulted.
        request = urllib.request.Request(f"{url}/hooks/acme", data=b"{}", headers={"X-Coachflow-Notification-Id": "n-2"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204
    _, redirected, followed = read_record(record)
    assert (redirected["path"], redirected["status"], redirected["fault"], redirected["sequence"]) == ("/hooks/acme", 302, "redirect", 2)
    assert (followed["method"], followed["path"], followed["status"], followed["fault"], followed["sequence"]) == (
        "GET", "/redirected/hooks/acme", 204, None, None,
    )  # fmt: skip
    assert summary(record)["followed_redirects"] == 1


def test_status_paths_keep_working_with_a_plan(tmp_path: Path):
    with receiver(tmp_path, FaultPlan(seed=1, error_share=0.0)) as (url, record):
        assert "answered HTTP 429" in outcome(f"{url}/status/429/hooks/acme")
        assert post(f"{url}/status/200/hooks/acme") == 200
        assert post(f"{url}/hooks/acme") == 204
    assert [(e["status"], e["fault"], e["sequence"]) for e in read_record(record)] == [(429, None, 1), (200, None, 2), (204, None, 3)]


# Determinism


MIXED = FaultPlan(seed=7, error_share=0.3, redirect_share=0.3)


def expected_faults(plan: FaultPlan, count: int) -> list[str | None]:
    """The documented rule: the n-th request gets the fault of the n-th draw of Random(seed)."""
    draws = random.Random(plan.seed)
    return [plan.choose(draws.random()) for _ in range(count)]


def test_same_seed_same_order_same_faults(tmp_path: Path):
    runs = []
    for _ in range(2):
        with receiver(tmp_path, MIXED) as (url, record):
            outcomes = [outcome(f"{url}/hooks/acme", f"n-{i}").replace(url, "URL") for i in range(30)]  # the port differs
        entries = read_record(record)
        assert [e["sequence"] for e in entries] == list(range(1, 31))
        runs.append(([e["fault"] for e in entries], outcomes))
    assert runs[0] == runs[1]
    faults, outcomes = runs[0]
    assert faults == expected_faults(MIXED, 30)
    assert {"error", "redirect", None} <= set(faults)  # the seed exercises all three
    for fault, said in zip(faults, outcomes):  # and delivery saw each as it was meant
        assert said == "204" if fault is None else ("HTTP 500" in said if fault == "error" else "HTTP 302" in said)
    other = FaultPlan(seed=8, error_share=0.3, redirect_share=0.3)
    assert expected_faults(other, 30) != faults


def test_concurrent_requests_each_get_their_own_draw(tmp_path: Path):
    said: dict[str, str] = {}
    with receiver(tmp_path, MIXED) as (url, record):

        def deliver(notification_id: str) -> None:
            said[notification_id] = outcome(f"{url}/hooks/acme", notification_id)

        threads = [threading.Thread(target=deliver, args=(f"n-{i}",)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    entries = read_record(record)
    by_sequence = {e["sequence"]: e["fault"] for e in entries}
    assert sorted(by_sequence) == list(range(1, 41))  # no draw shared, none skipped
    assert [by_sequence[n] for n in range(1, 41)] == expected_faults(MIXED, 40)
    # Every client saw the fault drawn for it, and nothing unplanned (the backlog holds them all).
    meant = {None: "204", "error": "answered HTTP 500", "redirect": "answered HTTP 302"}
    assert all(meant[e["fault"]] in said[e["notification_id"]] for e in entries) and len(said) == 40


# Down windows


def test_a_down_window_refuses_connections_then_the_receiver_recovers(tmp_path: Path):
    before = time.monotonic()
    with receiver(tmp_path, FaultPlan.from_json('{"down": [{"after": 1, "for": 2}]}')) as (url, record):
        after = time.monotonic()  # the window is [1, 3) s after the server started, somewhere in [before, after]
        assert post(f"{url}/hooks/acme", "n-1") == 204
        time.sleep(max(0.0, after + 1.5 - time.monotonic()))
        refused = outcome(f"{url}/hooks/acme", "n-2")
        assert refused.startswith(f"webhook {url} unreachable: 127.0.0.1:") and "refused" in refused, refused

        while (said := outcome(f"{url}/hooks/acme", "n-3", budget=2)) != "204":  # poll until it answers again
            assert "refused" in said, said
            assert time.monotonic() < after + 3 + 5, "the receiver did not come back"
            time.sleep(0.05)
        assert time.monotonic() >= before + 3  # not before the window's end
    assert [e["notification_id"] for e in read_record(record)] == ["n-1", "n-3"]  # refused connections reached no handler


# Reconciling


def test_summary_counts_acknowledged_ids_duplicates_and_faults(tmp_path: Path):
    with receiver(tmp_path, FaultPlan()) as (url, record):
        assert post(f"{url}/hooks/acme", "n-1") == 204
        assert post(f"{url}/hooks/acme", "n-1") == 204  # sent again after an acknowledgement: a duplicate
        assert post(f"{url}/hooks/acme", "n-2") == 204
        outcome(f"{url}/status/500/hooks/acme", "n-3")  # refused by the receiver: not acknowledged
        outcome(f"{url}/status/500/hooks/acme", "n-2")  # a failure after an acknowledgement: no duplicate
    with receiver(tmp_path, FaultPlan(hang_share=1, hang_seconds=0.2)) as (url, hung):
        outcome(f"{url}/hooks/acme", "n-4", budget=1)
    with hung.open() as lines, record.open("a") as out:  # one soak's record, from two receivers
        out.write(lines.read())
    assert summary(record) == {
        "received": 6,
        "acknowledged": 2,
        "duplicates": 1,
        "faults": {"error": 0, "hang": 1, "drip": 0, "redirect": 0},
        "followed_redirects": 0,
    }


def test_summary_reads_records_of_receivers_without_a_plan_and_older_ones(tmp_path: Path):
    record = tmp_path / "old.jsonl"
    old = {"received_at": 1.0, "path": "/hooks/acme", "status": 204, "headers": {"x-coachflow-notification-id": "n-1"}, "body": "{}"}
    record.write_text(json.dumps(old) + "\n" + json.dumps(old) + "\n")
    assert summary(record)["acknowledged"] == 1 and summary(record)["duplicates"] == 1
    assert summary(tmp_path / "absent.jsonl")["received"] == 0


# The command line


@contextmanager
def receiver_process(tmp_path: Path, *plan_args: str) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    name = f"cli-{time.monotonic_ns()}"
    record, port_file = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.port"
    args = [sys.executable, "-m", "emulator", "webhook", "--record", str(record), "--port-file", str(port_file), *plan_args]
    process = subprocess.Popen(args, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        port = wait_for(lambda: port_file.exists() and port_file.read_text(), timeout=30)
        yield f"http://127.0.0.1:{port}", record, process
    finally:
        process.send_signal(signal.SIGTERM)  # a plan's receiver stops gracefully; waiting reaps it
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop_group(process.pid)
            process.wait()


def test_cli_takes_a_plan_from_a_file_or_inline(tmp_path: Path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"error_share": 1, "error_status": 502}')
    with receiver_process(tmp_path, "--faults", str(plan)) as (url, record, _):
        assert outcome(f"{url}/hooks/acme") == f"webhook {url} answered HTTP 502"
    assert [(e["fault"], e["status"]) for e in read_record(record)] == [("error", 502)]
    with receiver_process(tmp_path, "--faults-json", '{"redirect_share": 1}') as (url, record, _):
        assert "HTTP 302" in outcome(f"{url}/hooks/acme")
    assert [(e["fault"], e["status"]) for e in read_record(record)] == [("redirect", 302)]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--faults-json", '{"hang_seconds": -3}'], "fault plan: hang_seconds must be a number of seconds, 0 or more, not -3"),
        (["--faults-json", '{"eror_share": 0.1}'], "fault plan: unknown key 'eror_share'"),
        (["--faults", "no-such-plan.json"], "--faults no-such-plan.json: No such file or directory"),
        (["--faults", "x.json", "--faults-json", "{}"], "not allowed with argument"),
    ],
)
def test_cli_refuses_an_invalid_plan_before_listening(tmp_path: Path, args: list[str], said: str):
    command = [sys.executable, "-m", "emulator", "webhook", "--record", str(tmp_path / "r.jsonl"), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert "listening" not in result.stdout


def test_cli_stopped_with_sigterm_records_the_drip_in_progress(tmp_path: Path):
    with receiver_process(tmp_path, "--faults-json", '{"drip_share": 1, "drip_seconds": 600}') as (url, record, process):
        # A client without a deadline of its own: the drip is still going when the receiver is stopped.
        connection = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)
        connection.sendall(b"POST /hooks/acme HTTP/1.1\r\nHost: x\r\nX-Coachflow-Notification-Id: n-1\r\nContent-Length: 2\r\n\r\n{}")
        assert connection.recv(1) == b"H"  # the drip has begun
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0 and time.monotonic() - started < 10
        connection.close()
        (entry,) = read_record(record)
    assert (entry["fault"], entry["answered"], entry["notification_id"]) == ("drip", False, "n-1")
