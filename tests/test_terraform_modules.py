"""The guardrails of each Terraform module and of the whole stack, as ``terraform test`` suites against a
mocked AWS provider (``mock_provider "aws"``: no credentials, no AWS call, nothing created).

terraform/modules/*/tests/guardrails.tftest.hcl assert what each module promises (a digest-pinned
image, active tracing, encrypted logs that expire, no wildcard action, named resources, a DLQ kept
longer than its queue, roles limited to their targets) and expect the refused inputs to fail;
terraform/coachflow/tests/guardrails.tftest.hcl asserts the same across the stack (its other suite,
validations.tftest.hcl, is tests/test_terraform.py's). Every run is listed here: a run deleted, renamed
or added without being listed fails the test."""

from __future__ import annotations

import re
import subprocess

import pytest

from emulator.stack import ROOT, terraform_env, terraform_init

pytestmark = pytest.mark.integration

# Directory under terraform/, the suite file (None: every suite of the directory), its runs in order.
SUITES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "modules/lambda_function": (None, (
        "the_function_runs_the_pinned_image_traced_and_encrypted",
        "the_log_group_is_the_functions_own_encrypted_and_expiring",
        "the_role_grants_no_wildcard_action_and_names_its_resources",
        "the_role_is_assumed_by_lambda_only",
        "an_sqs_source_reports_partial_batch_failures",
        "no_event_source_and_no_queue_grant_without_an_sqs_source",
        "an_image_by_tag_is_refused",
        "an_image_without_tag_or_digest_is_refused",
        "a_truncated_digest_is_refused",
        "a_wildcard_action_is_refused",
        "a_partial_wildcard_action_is_refused",
        "a_statement_on_every_resource_is_refused",
        "logs_kept_forever_are_refused",
    )),
    "modules/queue": (None, (
        "both_queues_are_encrypted",
        "dead_letters_are_kept_the_sqs_maximum_longer_than_the_source_queue",
        "a_message_received_five_times_is_dead_lettered",
        "the_visibility_timeout_is_the_one_sized_for_the_consumer",
        "only_the_source_queue_may_dead_letter_or_be_redriven_into",
        "a_dlq_that_forgets_first_is_refused",
        "sqs_keeps_nothing_longer_than_14_days",
        "fewer_than_five_receives_are_refused",
    )),
    "modules/schedule": (None, (
        "the_role_may_start_its_state_machine_and_nothing_else",
        "the_role_is_assumed_by_the_scheduler_only",
        "every_schedule_starts_its_target_as_the_role_with_its_input_encrypted",
        "a_function_target_may_only_be_invoked",
        "two_targets_are_refused",
        "no_target_is_refused",
        "an_expression_that_is_neither_rate_nor_cron_is_refused",
        "a_five_field_cron_is_refused",
        "a_cron_without_exactly_one_question_mark_is_refused",
    )),
    "modules/state_machine": (None, (
        "executions_are_logged_without_their_data_traced_and_encrypted",
        "the_log_group_is_encrypted_and_expiring",
        "the_definition_is_the_rendered_template",
        "the_role_may_invoke_exactly_the_listed_functions",
        "the_role_is_assumed_by_step_functions_only",
        "turning_execution_logging_off_is_refused",
        "all_is_logged_still_without_execution_data",
        "logs_kept_forever_are_refused",
        "a_wildcard_function_is_refused",
    )),
    "coachflow": ("tests/guardrails.tftest.hcl", (
        "no_policy_of_the_stack_allows_a_wildcard_action",
        "only_what_aws_cannot_scope_is_granted_on_every_resource",
        "every_queue_bucket_table_and_topic_is_encrypted",
        "dead_letters_are_kept_14_days_watched_and_outlived_by_their_claim_checks",
    )),
}  # fmt: skip


def test_every_module_has_a_suite():
    modules = {f"modules/{path.parent.parent.name}" for path in (ROOT / "terraform" / "modules").glob("*/tests/*.tftest.hcl")}
    assert modules == {path for path in SUITES if path.startswith("modules/")}
    assert modules == {f"modules/{path.name}" for path in (ROOT / "terraform" / "modules").iterdir() if (path / "main.tf").exists()}


@pytest.mark.parametrize("directory", list(SUITES))
def test_terraform_test_suite_passes(directory: str, tmp_path):
    suite, runs = SUITES[directory]
    env = terraform_env(tmp_path / "tfdata")  # a data directory per test: parallel runs never collide
    chdir = f"-chdir={ROOT / 'terraform' / directory}"
    init = terraform_init(ROOT / "terraform" / directory, env, "-backend=false")
    assert init.returncode == 0, init.stdout + init.stderr
    command = ["terraform", chdir, "test", "-no-color"] + ([f"-filter={suite}"] if suite else [])
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0 and " 0 failed" in result.stdout, output
    assert re.findall(r'^  run "([^"]+)"\.\.\. (\w+)$', result.stdout, re.MULTILINE) == [(run, "pass") for run in runs], output
