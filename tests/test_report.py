"""``./build.sh report``: the page drawn from a running environment, checked in a real headless
Chromium (Debian's, driven by playwright: ``emulator.browser``).

On the embedded AWS with the local environment applied, one batch goes through the pipeline and
one execution fails (CheckEventsForRuleMatch given a mode it does not know: UnknownException, retried,
then the execution fails); the page written from that environment must render without a console
error, draw one node per state and one edge per transition of the deployed definition, and mark
the failed execution (its row, and on the drawing the state it failed in). The run writes a
screenshot (.coachflow/screenshots/report-test.png).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from emulator import browser, observe, report
from emulator.stack import EXAMPLES, STATE_ROOT
from handlers.ingest import envelope
from tests.helpers import ended_executions, push, render_asl, set_secret, wait_execution, wait_for

LOCK_RULE = {"rule_id": "account-locked", "title": "Your account was locked", "match": {"class_uid": [3001], "activity_id": [9]}}
SCREENSHOT = STATE_ROOT / "screenshots" / "report-test.png"


def _definition() -> dict:
    return json.loads(render_asl("arn:check", "arn:trigger"))


def test_every_transition_of_the_definition_is_an_edge():
    definition = _definition()
    edges = {(e.source, e.target, e.kind) for e in report.edges_of(definition)}
    assert edges == {
        ("CheckEventsForRuleMatch", "FoundMatchingRules", "next"),
        ("CheckEventsForRuleMatch", "CheckEventsForRuleMatch", "retry"),
        ("FoundMatchingRules", "TriggerNotifications", "choice"),
        ("FoundMatchingRules", "Success", "choice"),
        ("TriggerNotifications", "Success", "next"),
        ("TriggerNotifications", "Fail", "catch"),
        ("TriggerNotifications", "TriggerNotifications", "retry"),
    }
    layer = report.layers(definition, report.edges_of(definition))
    assert layer == {"CheckEventsForRuleMatch": 0, "FoundMatchingRules": 1, "TriggerNotifications": 2, "Success": 3, "Fail": 3}
    drawing = report.svg(definition)
    assert len(re.findall(r'<g class="node ', drawing)) == 5 and len(re.findall(r'<g class="edge ', drawing)) == 7


def test_a_cycle_and_an_unreachable_state_still_get_a_layer():
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Choice", "Choices": [
        {"Variable": "$.again", "BooleanEquals": True, "Next": "A"}], "Default": "C"}, "C": {"Type": "Succeed"},
        "Orphan": {"Type": "Fail"}}}  # fmt: skip
    layer = report.layers(definition, report.edges_of(definition))
    assert layer["A"] < layer["B"] < layer["C"] and layer["Orphan"] > layer["C"]
    assert 'data-from="B" data-to="A" data-kind="choice"' in report.svg(definition)


@pytest.mark.integration
def test_the_report_renders_in_chromium_with_the_machine_and_a_failed_execution_marked(stack, webhook):
    base, _ = webhook
    tenant = f"rp-{uuid.uuid4().hex[:10]}"
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "report-secret")
    stack.client("sqs").send_message(QueueUrl=stack.outputs["raw_events_queue_url"], MessageAttributes=envelope(tenant, "okta"),
                                     MessageBody=(EXAMPLES / "okta" / "user_account_lock.json").read_text(encoding="utf-8"))  # fmt: skip
    failing = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.outputs["state_machine_arn"],
        name=f"{tenant}-unknown-mode",
        input=json.dumps({"mode": "nonsense", "tenant_id": tenant}),
    )["executionArn"]
    env = observe.Environment.of(stack)
    assert wait_execution(stack, failing, timeout=120)["status"] == "FAILED"
    wait_for(lambda: any(d["status"] == "delivered" for d in observe.ledger(env, tenant)), 180, "the delivery")
    assert len(ended_executions(stack, f"{tenant}-")) == 2  # the batch's and the failed one, named after the tenant

    page_file = report.write(env, STATE_ROOT / "screenshots" / "report-test.html")
    definition = observe.state_machine_definition(env)
    transitions = {(e.source, e.target, e.kind) for e in report.edges_of(definition)}
    problems: list[str] = []
    with browser.launched() as chromium:
        page = chromium.new_page(viewport=browser.VIEWPORT)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
        page.goto(page_file.resolve().as_uri())
        page.wait_for_selector("body[data-ready=true]")

        nodes = page.eval_on_selector_all("#machine g.node", "els => els.map(e => e.dataset.state)")
        assert sorted(nodes) == sorted(definition["States"])
        drawn = page.eval_on_selector_all("#machine g.edge", "els => els.map(e => [e.dataset.from, e.dataset.to, e.dataset.kind])")
        assert len(drawn) == len(transitions) and {tuple(e) for e in drawn} == transitions
        assert page.locator("#machine g.node").first.bounding_box()["width"] > 50  # drawn, not just present

        row = page.locator(f'tr.execution[data-status="FAILED"]:has-text("{tenant}-unknown-mode")')
        assert row.count() == 1 and "failed" in (row.get_attribute("class") or "")
        assert "UnknownException" in row.inner_text() and "unknown mode" in row.inner_text()
        marker = row.locator("td").first.evaluate("td => getComputedStyle(td).boxShadow")
        assert "207, 34, 46" in marker  # the red bar along a failed row
        ok_row = page.locator(f'tr.execution[data-tenant="{tenant}"][data-status="SUCCEEDED"]')
        assert ok_row.count() == 1 and "failed" not in (ok_row.get_attribute("class") or "")

        row.click()  # its path on the drawing: the state it failed in, marked red
        failed_node = page.locator('#machine g.node[data-state="CheckEventsForRuleMatch"]')
        assert "failed" in (failed_node.get_attribute("class") or "")
        assert failed_node.locator("rect").evaluate("r => getComputedStyle(r).stroke") == "rgb(207, 34, 46)"
        assert "3 attempts" in (failed_node.text_content() or "")
        assert "visited" not in (page.locator('#machine g.node[data-state="TriggerNotifications"]').get_attribute("class") or "")
        assert page.locator('#machine g.edge[data-kind="retry"][data-from="CheckEventsForRuleMatch"]').get_attribute("class").count("taken")

        page.select_option("#filter-status", "FAILED")  # the filters hide what does not match
        assert page.locator("tr.execution:visible").count() == page.locator('tr.execution[data-status="FAILED"]').count() >= 1
        page.select_option("#filter-status", "")
        page.select_option("#filter-tenant", tenant)
        assert page.locator("tr.execution:visible").count() == 2
        assert tenant in page.locator("#outcomes").inner_text() and "webhook" in page.locator("#channels").inner_text()

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    assert not problems, problems
