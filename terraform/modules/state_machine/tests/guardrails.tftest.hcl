# The state_machine module's guardrails, planned and applied against a mocked AWS provider (no AWS
# calls, nothing created): terraform -chdir=terraform/modules/state_machine test
# (tests/test_terraform_modules.py runs it).
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
      arn = "arn:aws:iam::123456789012:role/coachflow-test-evaluate-sfn-role"
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vendedlogs/states/coachflow-test-evaluate"
    }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = {
      arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:coachflow-test-evaluate"
    }
  }
}

# The role's policy is its own document (not, say, the trust policy): a JSON no other document has.
override_data {
  target = data.aws_iam_policy_document.this
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"TheRolePolicy\",\"Effect\":\"Allow\",\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-first\"}]}"
  }
}

variables {
  name                = "coachflow-test-evaluate"
  definition_template = "tests/two_tasks.asl.json"
  definition_vars = {
    first_function_arn  = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-first"
    second_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-second"
  }
  lambda_function_arns = [
    "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-first",
    "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-second",
  ]
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "executions_are_logged_without_their_data_traced_and_encrypted" {
  command = apply

  assert {
    condition     = aws_sfn_state_machine.this.type == "STANDARD"
    error_message = "A Standard state machine (exactly-once steps, redrivable executions)."
  }
  assert {
    condition     = aws_sfn_state_machine.this.logging_configuration[0].level == "ERROR"
    error_message = "Executions are logged at ERROR by default."
  }
  assert {
    condition     = aws_sfn_state_machine.this.logging_configuration[0].include_execution_data == false
    error_message = "Execution data (events carry personal data) must stay out of the logs."
  }
  assert {
    condition     = aws_sfn_state_machine.this.logging_configuration[0].log_destination == "${aws_cloudwatch_log_group.this.arn}:*"
    error_message = "Executions must be logged to the module's own log group."
  }
  assert {
    condition     = aws_sfn_state_machine.this.tracing_configuration[0].enabled
    error_message = "X-Ray tracing must be enabled."
  }
  assert {
    condition = (
      aws_sfn_state_machine.this.encryption_configuration[0].type == "CUSTOMER_MANAGED_KMS_KEY"
      && aws_sfn_state_machine.this.encryption_configuration[0].kms_key_id == var.kms_key_arn
    )
    error_message = "The state machine's data must be encrypted with the customer-managed key."
  }
  assert {
    condition     = aws_sfn_state_machine.this.role_arn == aws_iam_role.this.arn
    error_message = "The state machine runs as the module's role."
  }
}

run "the_log_group_is_encrypted_and_expiring" {
  command = apply

  variables {
    log_retention_days = 90
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.kms_key_id == var.kms_key_arn
    error_message = "The execution log group must be encrypted with the customer-managed key."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 90
    error_message = "The execution log group must keep logs for log_retention_days."
  }
  assert {
    # Log groups for vended logs need this prefix, or the log delivery's resource policy grows per group.
    condition     = startswith(aws_cloudwatch_log_group.this.name, "/aws/vendedlogs/states/")
    error_message = "The execution log group lives under /aws/vendedlogs/states/."
  }
}

run "the_definition_is_the_rendered_template" {
  command = apply

  assert {
    condition     = aws_sfn_state_machine.this.definition == templatefile(var.definition_template, var.definition_vars) && !strcontains(aws_sfn_state_machine.this.definition, "$${")
    error_message = "The deployed definition must be the template with every placeholder filled."
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.First.Resource == var.definition_vars.first_function_arn
    error_message = "The template's placeholders must be filled from definition_vars."
  }
}

run "the_role_may_invoke_exactly_the_listed_functions" {
  command = apply

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.this.statement : alltrue([for a in s.actions : !strcontains(a, "*")])])
    error_message = "No statement of the state machine's role may use a wildcard action."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
    try(length(s.not_actions), 0) == 0 && try(length(s.not_resources), 0) == 0 && coalesce(s.effect, "Allow") == "Allow"])
    error_message = "The role's policy grants named actions: no NotAction, no NotResource, no Deny to reason about."
  }
  assert {
    condition = one([for s in data.aws_iam_policy_document.this.statement : s.resources if s.sid == "InvokeTaskFunctions"]) == toset(concat(
      var.lambda_function_arns, [for arn in var.lambda_function_arns : "${arn}:*"]
    ))
    error_message = "The role may invoke the listed functions (and their versions and aliases), no other."
  }
  assert {
    condition     = one([for s in data.aws_iam_policy_document.this.statement : s.resources if s.sid == "UseDataKey"]) == toset([var.kms_key_arn])
    error_message = "The role may use the state machine's key only."
  }
  assert {
    # Log delivery and X-Ray's write actions have no resource-level permissions: the only statements on "*".
    condition     = [for s in data.aws_iam_policy_document.this.statement : s.sid if contains(s.resources, "*")] == ["DeliverExecutionLogs", "SendTraces"]
    error_message = "Only the log delivery and X-Ray statements may grant on every resource."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
      alltrue([for a in s.actions : startswith(a, s.sid == "DeliverExecutionLogs" ? "logs:" : "xray:")])
    if contains(s.resources, "*")])
    error_message = "The statements on every resource may hold log delivery and X-Ray actions only."
  }
  assert {
    condition     = aws_iam_role_policy.this.policy == data.aws_iam_policy_document.this.json && aws_iam_role_policy.this.role == aws_iam_role.this.id
    error_message = "The role's inline policy must be that document."
  }
}

run "the_role_is_assumed_by_step_functions_only" {
  command = apply

  assert {
    condition = (
      length(data.aws_iam_policy_document.assume.statement) == 1
      && one(data.aws_iam_policy_document.assume.statement).actions == toset(["sts:AssumeRole"])
      && jsonencode([for p in one(data.aws_iam_policy_document.assume.statement).principals : [p.type, p.identifiers]]) == jsonencode([["Service", ["states.amazonaws.com"]]])
      && aws_iam_role.this.assume_role_policy == data.aws_iam_policy_document.assume.json
    )
    error_message = "Only Step Functions may assume the state machine's role."
  }
}

run "turning_execution_logging_off_is_refused" {
  command = plan

  variables {
    log_level = "OFF"
  }
  expect_failures = [var.log_level]
}

run "all_is_logged_still_without_execution_data" {
  command = plan

  variables {
    log_level = "ALL"
  }

  assert {
    condition     = aws_sfn_state_machine.this.logging_configuration[0].level == "ALL" && aws_sfn_state_machine.this.logging_configuration[0].include_execution_data == false
    error_message = "The level given is the level logged, still without execution data."
  }
}

run "logs_kept_forever_are_refused" {
  command = plan

  variables {
    log_retention_days = 0
  }
  expect_failures = [var.log_retention_days]
}

run "a_wildcard_function_is_refused" {
  command = plan

  variables {
    lambda_function_arns = ["arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-*"]
  }
  expect_failures = [var.lambda_function_arns]
}
