# The stack's guardrails across every module, applied against a mocked AWS provider (no AWS calls,
# nothing created; apply so that every ARN is known): terraform -chdir=terraform/coachflow test
# -filter=tests/guardrails.tftest.hcl (tests/test_terraform_modules.py runs it). Each module's own
# guardrails are asserted by terraform/modules/*/tests; tests/test_terraform.py checks the applied
# stack on the embedded AWS.
mock_provider "aws" {
  # Policy documents are checked for valid JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  # ARNs are validated even when mocked.
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    }
  }
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:coachflow-dev-alarms"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/coachflow-dev-role"
    }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/coachflow-dev"
    }
  }
  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:eu-west-1:123456789012:function:coachflow-dev"
    }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = {
      arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:coachflow-dev-evaluate"
    }
  }
  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:coachflow-dev-queue"
    }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = {
      arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/coachflow-dev"
    }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "123456789012" }
  }
  override_data {
    target = data.aws_region.current
    values = { name = "eu-west-1" }
  }
  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }
}

# Two buckets told apart: each one's settings must be on that bucket.
override_resource {
  target = aws_s3_bucket.claims
  values = {
    id  = "coachflow-dev-claims-123456789012-eu-west-1"
    arn = "arn:aws:s3:::coachflow-dev-claims-123456789012-eu-west-1"
  }
}
override_resource {
  target = aws_s3_bucket.access_logs
  values = {
    id  = "coachflow-dev-access-logs-123456789012-eu-west-1"
    arn = "arn:aws:s3:::coachflow-dev-access-logs-123456789012-eu-west-1"
  }
}

# Every optional statement present: a tenant's schedule, an email identity.
variables {
  environment         = "dev"
  alarm_subscriptions = [{ protocol = "email", endpoint = "oncall@example.com" }]
  image_uri           = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  tenants             = { acme = { reevaluation_schedule = "rate(1 day)" } }
  email_identities    = ["coaching@acme.example"]
}

# The roles: every function's, the state machine's and both schedulers'. The resource policies: the
# key's, both buckets' and the alarm topic's. A new role or policy document belongs in these lists.
run "no_policy_of_the_stack_allows_a_wildcard_action" {
  command = apply

  assert {
    condition = alltrue([for statements in [
      module.normalize.role_policy_statements, module.check_rules.role_policy_statements,
      module.trigger_notifications.role_policy_statements, module.sweep.role_policy_statements,
      module.state_machine.role_policy_statements, module.reevaluation.role_policy_statements,
      module.sweep_schedule.role_policy_statements,
    ] : length(statements) > 0])
    error_message = "Every role's policy is checked here (an empty list would check nothing)."
  }
  assert {
    condition = alltrue(flatten([for statements in [
      module.normalize.role_policy_statements, module.check_rules.role_policy_statements,
      module.trigger_notifications.role_policy_statements, module.sweep.role_policy_statements,
      module.state_machine.role_policy_statements, module.reevaluation.role_policy_statements,
      module.sweep_schedule.role_policy_statements,
      ] : [for s in statements :
      try(length(s.not_actions), 0) == 0 && alltrue([for a in(s.actions == null ? toset([]) : s.actions) : !strcontains(a, "*")])
    ]]))
    error_message = "No role of the stack may be granted a wildcard action (or a NotAction, which grants every other one)."
  }
  assert {
    condition = alltrue([for s in concat(
      data.aws_iam_policy_document.key.statement, data.aws_iam_policy_document.claims.statement,
      data.aws_iam_policy_document.access_logs.statement, data.aws_iam_policy_document.alarms_topic.statement,
      ) :
      coalesce(s.effect, "Allow") == "Deny" || (try(length(s.not_actions), 0) == 0 && alltrue([for a in s.actions : !strcontains(a, "*")]))
    ])
    error_message = "No resource policy of the stack may allow a wildcard action: only a Deny may name every action."
  }
  assert {
    condition = jsonencode([for s in concat(
      data.aws_iam_policy_document.key.statement, data.aws_iam_policy_document.claims.statement,
      data.aws_iam_policy_document.access_logs.statement, data.aws_iam_policy_document.alarms_topic.statement,
      ) : [s.sid, s.effect, s.condition] if anytrue([for a in s.actions : strcontains(a, "*")])]) == jsonencode([
      for _ in range(2) : ["DenyInsecureTransport", "Deny", [{ test = "Bool", values = ["false"], variable = "aws:SecureTransport" }]]
    ])
    error_message = "The only wildcard actions are the two buckets' denials of plain-HTTP requests."
  }
}

run "only_what_aws_cannot_scope_is_granted_on_every_resource" {
  command = apply

  assert {
    # X-Ray's writes and Step Functions' log delivery have no resource-level permissions: these
    # actions, and no other, may be granted on "*".
    condition = alltrue(flatten([for statements in [
      module.normalize.role_policy_statements, module.check_rules.role_policy_statements,
      module.trigger_notifications.role_policy_statements, module.sweep.role_policy_statements,
      module.state_machine.role_policy_statements, module.reevaluation.role_policy_statements,
      module.sweep_schedule.role_policy_statements,
      ] : [for s in statements :
      length(setsubtract(s.actions, [
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
      ])) == 0 if try(contains(s.resources, "*"), false)
    ]]))
    error_message = "A role may be granted on every resource only the X-Ray and log-delivery actions that cannot be scoped."
  }
  assert {
    condition = alltrue(flatten([for statements in [
      module.normalize.role_policy_statements, module.check_rules.role_policy_statements,
      module.trigger_notifications.role_policy_statements, module.sweep.role_policy_statements,
      module.state_machine.role_policy_statements, module.reevaluation.role_policy_statements,
      module.sweep_schedule.role_policy_statements,
    ] : [for s in statements : try(length(s.not_resources), 0) == 0]]))
    error_message = "No role of the stack may hold a NotResource (it grants on every other resource)."
  }
  assert {
    # The key policy's "*" is the key itself.
    condition = alltrue([for s in concat(
      data.aws_iam_policy_document.claims.statement, data.aws_iam_policy_document.access_logs.statement,
      data.aws_iam_policy_document.alarms_topic.statement,
    ) : !contains(s.resources, "*")])
    error_message = "The buckets' and the topic's policies name their resources."
  }
  assert {
    condition = alltrue([for s in concat(
      data.aws_iam_policy_document.key.statement, data.aws_iam_policy_document.claims.statement,
      data.aws_iam_policy_document.access_logs.statement, data.aws_iam_policy_document.alarms_topic.statement,
      ) :
      coalesce(s.effect, "Allow") == "Deny" || !anytrue([for p in(s.principals == null ? [] : s.principals) : contains(p.identifiers, "*")])
    ])
    error_message = "No resource policy of the stack may allow everyone: only a Deny may name every principal."
  }
}

run "every_queue_bucket_table_and_topic_is_encrypted" {
  command = apply

  assert {
    condition     = module.raw_events.encrypted && aws_sqs_queue.dead_notifications.sqs_managed_sse_enabled
    error_message = "Every queue (raw events, its DLQ, dead notifications) must be encrypted at rest."
  }
  assert {
    condition = alltrue([for table in [aws_dynamodb_table.rules, aws_dynamodb_table.state] :
    table.server_side_encryption[0].enabled && table.server_side_encryption[0].kms_key_arn == aws_kms_key.this.arn])
    error_message = "Both tables must be encrypted with the stack's key."
  }
  assert {
    condition = (
      aws_s3_bucket_server_side_encryption_configuration.claims.bucket == aws_s3_bucket.claims.id
      && one(aws_s3_bucket_server_side_encryption_configuration.claims.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
      && one(aws_s3_bucket_server_side_encryption_configuration.claims.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == aws_kms_key.this.arn
    )
    error_message = "The claim-check bucket must be encrypted with the stack's key."
  }
  assert {
    # S3 server access logs can be delivered only to a bucket encrypted with SSE-S3.
    condition = (
      aws_s3_bucket_server_side_encryption_configuration.access_logs.bucket == aws_s3_bucket.access_logs.id
      && one(aws_s3_bucket_server_side_encryption_configuration.access_logs.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    )
    error_message = "The access-log bucket must be encrypted (SSE-S3)."
  }
  assert {
    condition = alltrue([for block in [aws_s3_bucket_public_access_block.claims, aws_s3_bucket_public_access_block.access_logs] :
    block.block_public_acls && block.block_public_policy && block.ignore_public_acls && block.restrict_public_buckets])
    error_message = "Neither bucket may be made public."
  }
  assert {
    condition     = [for policy in aws_s3_bucket_policy.claims : policy.bucket] == [aws_s3_bucket.claims.id]
    error_message = "Outside local, the claim-check bucket refuses plain-HTTP requests."
  }
  assert {
    condition     = aws_sns_topic.alarms.kms_master_key_id == aws_kms_key.this.arn
    error_message = "The alarm topic must be encrypted with the stack's key."
  }
  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The stack's key must rotate."
  }
}

run "dead_letters_are_kept_14_days_watched_and_outlived_by_their_claim_checks" {
  command = apply

  assert {
    condition     = module.raw_events.dlq_message_retention_seconds == 1209600 && aws_sqs_queue.dead_notifications.message_retention_seconds == 1209600
    error_message = "Both dead-letter queues must keep messages 14 days, the SQS maximum."
  }
  assert {
    condition     = module.raw_events.dlq_message_retention_seconds > module.raw_events.message_retention_seconds
    error_message = "Raw events' dead letters must be kept longer than raw events."
  }
  assert {
    # A dead letter may point to a claim-check: the claim-check must not expire first.
    condition = one([for rule in aws_s3_bucket_lifecycle_configuration.claims.rule : rule.expiration[0].days if rule.id == "expire-claim-checks"]) * 86400 > max(
      module.raw_events.dlq_message_retention_seconds, aws_sqs_queue.dead_notifications.message_retention_seconds
    )
    error_message = "Claim-checks must outlive the dead letters that point to them."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["raw-events-dlq-not-empty"].dimensions == tomap({ QueueName = module.raw_events.dlq_name })
      && aws_cloudwatch_metric_alarm.this["dead-notifications-not-empty"].dimensions == tomap({ QueueName = aws_sqs_queue.dead_notifications.name })
      && alltrue([for name in ["raw-events-dlq-not-empty", "dead-notifications-not-empty"] :
      aws_cloudwatch_metric_alarm.this[name].threshold == 0 && aws_cloudwatch_metric_alarm.this[name].comparison_operator == "GreaterThanThreshold"])
    )
    error_message = "Each dead-letter queue has an alarm that fires on its first message."
  }
}
