# Evaluate: the state machine checks each batch against the tenant's rules (check_rules) and
# delivers the notifications that are due (trigger_notifications).

module "check_rules" {
  source = "../modules/lambda_function"

  name               = "${local.name}-check-rules"
  image_uri          = var.image_uri
  architecture       = var.architecture
  command            = ["handlers.check_rules.handler"]
  timeout            = var.check_rules.timeout
  memory_size        = var.check_rules.memory_size
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  tags               = local.tags

  environment = merge(local.common_environment, {
    RULES_TABLE = aws_dynamodb_table.rules.name
    STATE_TABLE = aws_dynamodb_table.state.name
    # re-evaluation (reevaluate.tf): the buffer's retention, the bound of one re-run, and the lease
    # on a tenant's re-run, which must outlast the function (as the ledger's delivery lease does)
    REEVALUATION_BUFFER_SECONDS = tostring(var.reevaluation.buffer_days * 86400)
    REEVALUATION_MAX_EVENTS     = tostring(var.reevaluation.max_events)
    REEVALUATION_LEASE_SECONDS  = tostring(var.check_rules.timeout + 60)
  })

  policy_statements = [
    { sid = "ReadRules", actions = ["dynamodb:GetItem", "dynamodb:Query"], resources = [aws_dynamodb_table.rules.arn] },
    { sid = "KeepState", actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources = [aws_dynamodb_table.state.arn] },
    { sid = "ClaimCheckGetEvents", actions = ["s3:GetObject"], resources = [local.claim_check_objects.events] },
    { sid = "ClaimCheckPutMatches", actions = ["s3:PutObject"], resources = [local.claim_check_objects.matches] },
    { sid = "RecentEventsBuffer", actions = ["s3:PutObject", "s3:GetObject"], resources = [local.claim_check_objects.recent] },
    # listing a tenant's buffer needs the bucket itself: only under recent/
    {
      sid        = "RecentEventsList", actions = ["s3:ListBucket"], resources = [aws_s3_bucket.claims.arn],
      conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["${local.claim_check_prefixes.recent}*"] }]
    },
    { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.this.arn] },
  ]
}

module "trigger_notifications" {
  source = "../modules/lambda_function"

  name               = "${local.name}-trigger-notifications"
  image_uri          = var.image_uri
  architecture       = var.architecture
  command            = ["handlers.trigger_notifications.handler"]
  timeout            = var.trigger_notifications.timeout
  memory_size        = var.trigger_notifications.memory_size
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  tags               = local.tags

  environment = merge(local.common_environment, {
    RULES_TABLE              = aws_dynamodb_table.rules.name
    STATE_TABLE              = aws_dynamodb_table.state.name
    WEBHOOK_SECRET_PREFIX    = local.secret_prefix
    WEBHOOK_TIMEOUT_SECONDS  = tostring(var.trigger_notifications.webhook_timeout_seconds)
    ALLOW_HTTP_WEBHOOKS      = tostring(var.allow_http_webhooks)
    WEBHOOK_ALLOWED_NETWORKS = join(",", var.webhook_allowed_networks)
    DELIVERY_LEASE_SECONDS   = tostring(local.delivery_lease_seconds)
    DELIVERY_BACKOFF_SECONDS = tostring(var.trigger_notifications.backoff_seconds)
    # the first attempt and the state machine's retries: one round of the ledger's backoff
    DELIVERY_ATTEMPTS_PER_ROUND  = tostring(var.state_machine_retry.max_attempts + 1)
    DEAD_NOTIFICATIONS_QUEUE_URL = aws_sqs_queue.dead_notifications.url
  })

  policy_statements = concat([
    { sid = "ReadTenantSettings", actions = ["dynamodb:GetItem"], resources = [aws_dynamodb_table.rules.arn] },
    { sid = "RecordDeliveries", actions = ["dynamodb:UpdateItem"], resources = [aws_dynamodb_table.state.arn] },
    { sid = "DeadLetterNotifications", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.dead_notifications.arn] },
    # <prefix><tenant>: the webhook signing secret; <prefix><tenant>/<channel>: a channel's credentials
    { sid = "ReadTenantSecrets", actions = ["secretsmanager:GetSecretValue"], resources = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.secret_prefix}*"] },
    { sid = "ClaimCheckGet", actions = ["s3:GetObject"], resources = [local.claim_check_objects.matches] },
    { sid = "UseDataKey", actions = ["kms:Decrypt"], resources = [aws_kms_key.this.arn] },
    ], length(local.email_identity_arns) == 0 ? [] : [
    # coaching email, from the environment's verified identities only (channels.tf)
    { sid = "SendCoachingEmail", actions = ["ses:SendEmail"], resources = local.email_identity_arns },
  ])
}

module "state_machine" {
  source = "../modules/state_machine"

  name                = local.state_machine_name
  definition_template = "${path.module}/../../asl/coachflow.asl.json"
  definition_vars = {
    check_events_function_arn          = module.check_rules.arn
    trigger_notifications_function_arn = module.trigger_notifications.arn
    retry_interval_seconds             = var.state_machine_retry.interval_seconds
    retry_max_attempts                 = var.state_machine_retry.max_attempts
    retry_backoff_rate                 = var.state_machine_retry.backoff_rate
  }
  lambda_function_arns = [module.check_rules.arn, module.trigger_notifications.arn]
  kms_key_arn          = aws_kms_key.this.arn
  log_retention_days   = var.log_retention_days
  tags                 = local.tags
}

# A claimed notification is leased for longer than its deliverer can run, so a live deliverer never
# loses its lease to a retry (handlers/ledger.py); a dead one's lease expires and the sweep retries it.
locals {
  delivery_lease_seconds = coalesce(var.trigger_notifications.delivery_lease_seconds, var.trigger_notifications.timeout + 60)
}

# Notifications whose every attempt failed, with the reason: nothing ages out silently. Kept 14 days
# (the SQS maximum); an alarm watches its depth (alarms.tf).
resource "aws_sqs_queue" "dead_notifications" {
  name                      = "${local.name}-dead-notifications"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}
