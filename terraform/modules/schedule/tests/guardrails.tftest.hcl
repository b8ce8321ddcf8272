# The schedule module's guardrails, planned and applied against a mocked AWS provider (no AWS calls,
# nothing created): terraform -chdir=terraform/modules/schedule test (tests/test_terraform_modules.py
# runs it).
mock_provider "aws" {
  # Policy documents are checked for valid JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  # ARNs are validated even when mocked.
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/coachflow-test-reevaluate-scheduler-role"
    }
  }
}

# The role's policy is its own document (not, say, the trust policy): a JSON no other document has.
override_data {
  target = data.aws_iam_policy_document.this
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"TheRolePolicy\",\"Effect\":\"Allow\",\"Action\":\"states:StartExecution\",\"Resource\":\"arn:aws:states:eu-west-1:123456789012:stateMachine:coachflow-test-evaluate\"}]}"
  }
}

variables {
  name              = "coachflow-test-reevaluate"
  state_machine_arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:coachflow-test-evaluate"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  schedules = {
    "coachflow-test-reevaluate-acme"   = { expression = "cron(0 8 ? * MON-FRI *)", timezone = "Europe/Paris", input = "{\"tenant_id\":\"acme\"}" }
    "coachflow-test-reevaluate-globex" = { expression = "rate(1 hour)", input = "{\"tenant_id\":\"globex\"}" }
  }
}

run "the_role_may_start_its_state_machine_and_nothing_else" {
  command = apply

  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
    alltrue([for a in s.actions : !strcontains(a, "*")]) && alltrue([for r in s.resources : !strcontains(r, "*")])])
    error_message = "No statement of the scheduler's role may use a wildcard action or resource."
  }
  assert {
    condition = jsonencode([for s in data.aws_iam_policy_document.this.statement : [s.sid, coalesce(s.effect, "Allow"), s.actions, s.resources]]) == jsonencode([
      ["StartTheStateMachine", "Allow", ["states:StartExecution"], [var.state_machine_arn]],
      ["DecryptScheduleInput", "Allow", ["kms:Decrypt"], [var.kms_key_arn]],
    ])
    error_message = "The scheduler's role may start the one state machine and decrypt the schedules' input, nothing more."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
    try(length(s.not_actions), 0) == 0 && try(length(s.not_resources), 0) == 0])
    error_message = "No NotAction or NotResource: they grant everything else."
  }
  assert {
    condition     = aws_iam_role_policy.this.policy == data.aws_iam_policy_document.this.json && aws_iam_role_policy.this.role == aws_iam_role.this.id
    error_message = "The role's inline policy must be that document."
  }
}

run "the_role_is_assumed_by_the_scheduler_only" {
  command = apply

  assert {
    condition = (
      length(data.aws_iam_policy_document.assume.statement) == 1
      && one(data.aws_iam_policy_document.assume.statement).actions == toset(["sts:AssumeRole"])
      && jsonencode([for p in one(data.aws_iam_policy_document.assume.statement).principals : [p.type, p.identifiers]]) == jsonencode([["Service", ["scheduler.amazonaws.com"]]])
      && aws_iam_role.this.assume_role_policy == data.aws_iam_policy_document.assume.json
    )
    error_message = "Only EventBridge Scheduler may assume the role."
  }
}

run "every_schedule_starts_its_target_as_the_role_with_its_input_encrypted" {
  command = apply

  assert {
    condition     = length(aws_scheduler_schedule.this) == 2
    error_message = "One schedule per entry of schedules."
  }
  assert {
    condition = alltrue([for s in aws_scheduler_schedule.this :
    s.target[0].arn == var.state_machine_arn && s.target[0].role_arn == aws_iam_role.this.arn])
    error_message = "Every schedule must target the state machine, as the module's role."
  }
  assert {
    condition     = alltrue([for s in aws_scheduler_schedule.this : s.kms_key_arn == var.kms_key_arn])
    error_message = "Every schedule's stored input must be encrypted with the customer-managed key."
  }
  assert {
    condition     = alltrue([for s in aws_scheduler_schedule.this : s.group_name == aws_scheduler_schedule_group.this.name])
    error_message = "Every schedule belongs to the module's group."
  }
  assert {
    condition = alltrue([for s in aws_scheduler_schedule.this :
    s.target[0].retry_policy[0].maximum_retry_attempts == 3 && s.target[0].retry_policy[0].maximum_event_age_in_seconds == 3600])
    error_message = "A failed start is retried up to 3 times within an hour."
  }
  assert {
    condition     = aws_scheduler_schedule.this["coachflow-test-reevaluate-globex"].schedule_expression_timezone == "UTC" && aws_scheduler_schedule.this["coachflow-test-reevaluate-acme"].schedule_expression_timezone == "Europe/Paris"
    error_message = "A schedule runs in its own time zone, UTC unless set."
  }
}

run "a_function_target_may_only_be_invoked" {
  command = apply

  variables {
    state_machine_arn = null
    function_arn      = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-sweep"
  }

  assert {
    condition = jsonencode([for s in data.aws_iam_policy_document.this.statement : [s.sid, coalesce(s.effect, "Allow"), s.actions, s.resources]]) == jsonencode([
      ["InvokeTheFunction", "Allow", ["lambda:InvokeFunction"], [var.function_arn]],
      ["DecryptScheduleInput", "Allow", ["kms:Decrypt"], [var.kms_key_arn]],
    ])
    error_message = "The scheduler's role may invoke the one function and decrypt the schedules' input, nothing more."
  }
  assert {
    condition     = alltrue([for s in aws_scheduler_schedule.this : s.target[0].arn == var.function_arn])
    error_message = "Every schedule must target the function."
  }
}

run "two_targets_are_refused" {
  command = plan

  variables {
    function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-sweep"
  }
  expect_failures = [var.function_arn]
}

run "no_target_is_refused" {
  command = plan

  variables {
    state_machine_arn = null
  }
  expect_failures = [var.function_arn]
}

run "an_expression_that_is_neither_rate_nor_cron_is_refused" {
  command = plan

  variables {
    schedules = { "coachflow-test-reevaluate-acme" = { expression = "every 5 minutes", input = "{}" } }
  }
  expect_failures = [var.schedules]
}

run "a_five_field_cron_is_refused" {
  command = plan

  variables {
    schedules = { "coachflow-test-reevaluate-acme" = { expression = "cron(0 8 ? * MON-FRI)", input = "{}" } }
  }
  expect_failures = [var.schedules]
}

run "a_cron_without_exactly_one_question_mark_is_refused" {
  command = plan

  variables {
    schedules = { "coachflow-test-reevaluate-acme" = { expression = "cron(0 8 * * MON-FRI *)", input = "{}" } }
  }
  expect_failures = [var.schedules]
}
