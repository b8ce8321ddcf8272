# The lambda_function module's guardrails, planned and applied against a mocked AWS provider (no AWS
# calls, nothing created): terraform -chdir=terraform/modules/lambda_function test
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
      arn = "arn:aws:iam::123456789012:role/coachflow-test-fn-role"
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/coachflow-test-fn"
    }
  }
  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-test-fn"
    }
  }
}

# The role's policy is its own document (not, say, the trust policy): a JSON no other document has.
override_data {
  target = data.aws_iam_policy_document.this
  values = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"TheRolePolicy\",\"Effect\":\"Allow\",\"Action\":\"logs:PutLogEvents\",\"Resource\":\"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/coachflow-test-fn:*\"}]}"
  }
}

variables {
  name        = "coachflow-test-fn"
  image_uri   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  command     = ["handlers.normalize.handler"]
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  sqs_source = {
    queue_arn = "arn:aws:sqs:eu-west-1:123456789012:coachflow-test-raw-events"
  }
  policy_statements = [
    { sid = "StartEvaluation", actions = ["states:StartExecution"], resources = ["arn:aws:states:eu-west-1:123456789012:stateMachine:coachflow-test"] },
    {
      sid        = "ListOnePrefix", actions = ["s3:ListBucket"], resources = ["arn:aws:s3:::coachflow-test-claims"],
      conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["recent/*"] }]
    },
  ]
}

run "the_function_runs_the_pinned_image_traced_and_encrypted" {
  command = apply

  assert {
    condition     = aws_lambda_function.this.package_type == "Image" && aws_lambda_function.this.image_uri == var.image_uri
    error_message = "The function must run the image it was given, by digest."
  }
  assert {
    condition     = aws_lambda_function.this.tracing_config[0].mode == "Active"
    error_message = "X-Ray tracing must be Active."
  }
  assert {
    condition     = aws_lambda_function.this.kms_key_arn == var.kms_key_arn
    error_message = "The environment variables must be encrypted with the customer-managed key."
  }
  assert {
    condition     = aws_lambda_function.this.role == aws_iam_role.this.arn
    error_message = "The function must run as its own role."
  }
}

run "the_log_group_is_the_functions_own_encrypted_and_expiring" {
  command = apply

  variables {
    log_retention_days = 90
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/lambda/${aws_lambda_function.this.function_name}"
    error_message = "The log group must be the one Lambda writes the function's logs to, or the function creates an unencrypted one of its own."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.kms_key_id == var.kms_key_arn
    error_message = "The log group must be encrypted with the customer-managed key."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 90
    error_message = "The log group must keep logs for log_retention_days."
  }
}

run "the_role_grants_no_wildcard_action_and_names_its_resources" {
  command = apply

  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
    alltrue([for a in(s.actions == null ? toset([]) : s.actions) : !strcontains(a, "*")])])
    error_message = "No statement of the role's policy may use a wildcard action."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.this.statement :
    try(length(s.not_actions), 0) == 0 && try(length(s.not_resources), 0) == 0 && coalesce(s.effect, "Allow") == "Allow"])
    error_message = "The role's policy grants named actions on named resources: no NotAction, no NotResource, no Deny to reason about."
  }
  assert {
    # X-Ray's write actions have no resource-level permissions: the only statement on "*".
    condition     = [for s in data.aws_iam_policy_document.this.statement : s.sid if contains(s.resources, "*")] == ["SendTraces"]
    error_message = "Only the X-Ray statement may grant on every resource."
  }
  assert {
    condition     = one([for s in data.aws_iam_policy_document.this.statement : s.actions if s.sid == "SendTraces"]) == toset(["xray:PutTraceSegments", "xray:PutTelemetryRecords"])
    error_message = "The statement on every resource may hold X-Ray's write actions only."
  }
  assert {
    condition     = one([for s in data.aws_iam_policy_document.this.statement : s.resources if s.sid == "WriteOwnLogs"]) == toset(["${aws_cloudwatch_log_group.this.arn}:*"])
    error_message = "The function may write to its own log group only."
  }
  assert {
    condition     = one([for s in data.aws_iam_policy_document.this.statement : s.resources if s.sid == "ConsumeSourceQueue"]) == toset([var.sqs_source.queue_arn])
    error_message = "The function may consume its own source queue only."
  }
  assert {
    condition     = [for s in data.aws_iam_policy_document.this.statement : s.sid] == ["WriteOwnLogs", "SendTraces", "ConsumeSourceQueue", "StartEvaluation", "ListOnePrefix"]
    error_message = "The role's policy holds the module's statements and exactly the policy_statements given."
  }
  assert {
    condition     = jsonencode([for c in one([for s in data.aws_iam_policy_document.this.statement : s.condition if s.sid == "ListOnePrefix"]) : [c.test, c.variable, c.values]]) == jsonencode([["StringLike", "s3:prefix", ["recent/*"]]])
    error_message = "A statement's conditions must be kept: they are what narrows it."
  }
  assert {
    condition     = aws_iam_role_policy.this.policy == data.aws_iam_policy_document.this.json && aws_iam_role_policy.this.role == aws_iam_role.this.id
    error_message = "The role's inline policy must be that document."
  }
}

run "the_role_is_assumed_by_lambda_only" {
  command = apply

  assert {
    condition = (
      length(data.aws_iam_policy_document.assume.statement) == 1
      && one(data.aws_iam_policy_document.assume.statement).actions == toset(["sts:AssumeRole"])
      && jsonencode([for p in one(data.aws_iam_policy_document.assume.statement).principals : [p.type, p.identifiers]]) == jsonencode([["Service", ["lambda.amazonaws.com"]]])
      && aws_iam_role.this.assume_role_policy == data.aws_iam_policy_document.assume.json
    )
    error_message = "Only the Lambda service may assume the function's role."
  }
}

run "an_sqs_source_reports_partial_batch_failures" {
  command = apply

  assert {
    condition     = aws_lambda_event_source_mapping.sqs[0].event_source_arn == var.sqs_source.queue_arn && aws_lambda_event_source_mapping.sqs[0].function_name == aws_lambda_function.this.arn
    error_message = "The event source must map the given queue onto this function."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.sqs[0].function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "Partial batch responses must be on, or one bad record redelivers its whole batch."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.sqs[0].scaling_config[0].maximum_concurrency == 10
    error_message = "The queue's pollers must be bounded (maximum_concurrency)."
  }
}

run "no_event_source_and_no_queue_grant_without_an_sqs_source" {
  command = apply

  variables {
    sqs_source = null
  }

  assert {
    condition     = length(aws_lambda_event_source_mapping.sqs) == 0
    error_message = "Without sqs_source there is no event source mapping."
  }
  assert {
    condition     = !contains([for s in data.aws_iam_policy_document.this.statement : s.sid], "ConsumeSourceQueue")
    error_message = "Without sqs_source the role may consume no queue."
  }
}

run "an_image_by_tag_is_refused" {
  command = plan

  variables {
    image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers:latest"
  }
  expect_failures = [var.image_uri]
}

run "an_image_without_tag_or_digest_is_refused" {
  command = plan

  variables {
    image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers"
  }
  expect_failures = [var.image_uri]
}

run "a_truncated_digest_is_refused" {
  command = plan

  variables {
    image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers@sha256:0123456789abcdef"
  }
  expect_failures = [var.image_uri]
}

run "a_wildcard_action_is_refused" {
  command = plan

  variables {
    policy_statements = [{ sid = "Everything", actions = ["s3:*"], resources = ["arn:aws:s3:::coachflow-test-claims/*"] }]
  }
  expect_failures = [var.policy_statements]
}

run "a_partial_wildcard_action_is_refused" {
  command = plan

  variables {
    policy_statements = [{ sid = "AllGets", actions = ["s3:Get*"], resources = ["arn:aws:s3:::coachflow-test-claims/*"] }]
  }
  expect_failures = [var.policy_statements]
}

run "a_statement_on_every_resource_is_refused" {
  command = plan

  variables {
    policy_statements = [{ sid = "AnyTable", actions = ["dynamodb:GetItem"], resources = ["*"] }]
  }
  expect_failures = [var.policy_statements]
}

run "logs_kept_forever_are_refused" {
  command = plan

  variables {
    log_retention_days = 0
  }
  expect_failures = [var.log_retention_days]
}
