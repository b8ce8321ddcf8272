# The coachflow stack, one per environment:
#   raw-events queue (+DLQ) -> normalize -> StartExecution -> state machine
#     CheckEventsForRuleMatch -> FoundMatchingRules -> TriggerNotifications
#   EventBridge Scheduler -> state machine (re-evaluation mode, per tenant)
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "${var.name_prefix}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  tags       = merge({ Application = "coachflow", Environment = var.environment }, var.tags)

  # Predictable ARNs break the cycle between the functions (which start executions) and the state
  # machine (which invokes the functions).
  state_machine_name = "${local.name}-evaluate"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  secret_prefix      = "coachflow/${var.environment}/tenants/"

  common_environment = {
    COACHFLOW_ENV                = var.environment
    POWERTOOLS_SERVICE_NAME      = "coachflow"
    POWERTOOLS_METRICS_NAMESPACE = "Coachflow"
    POWERTOOLS_LOG_LEVEL         = var.log_level
    CLAIMS_BUCKET                = aws_s3_bucket.claims.bucket
  }
}

# --- encryption at rest --------------------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  statement {
    sid = "AccountAdministersKeyThroughIam"
    # The account administers the key and IAM policies decide who may use it (AWS's default key
    # policy, with its actions spelled out instead of kms:*).
    actions = [
      "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
      "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:EnableKey", "kms:DisableKey",
      "kms:UpdateKeyDescription", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
      "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
      "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant",
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
      "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
    ]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsOurLogGroups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "coachflow ${var.environment}: tables, claim-check bucket, logs, state machine, schedules"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- data ----------------------------------------------------------------------------------------

# Rules and tenant settings, one partition per tenant: pk tenant_id, sk rule_id ("#tenant" holds the
# tenant's settings and rule-set version).
resource "aws_dynamodb_table" "rules" {
  name                        = "${local.name}-rules"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tenant_id"
  range_key                   = "rule_id"
  deletion_protection_enabled = var.deletion_protection
  tags                        = local.tags

  attribute {
    name = "tenant_id"
    type = "S"
  }
  attribute {
    name = "rule_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# Evaluation state: threshold counters, suppression windows, delivered/pending notifications.
# Items expire through TTL.
resource "aws_dynamodb_table" "state" {
  name                        = "${local.name}-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection
  tags                        = local.tags

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# Claim-check: what is too big to travel inside a Step Functions payload.
resource "aws_s3_bucket" "claims" {
  bucket        = "${local.name}-claims-${local.account_id}-${local.region}"
  force_destroy = !var.deletion_protection
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "claims" {
  bucket                  = aws_s3_bucket.claims.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "claims" {
  bucket = aws_s3_bucket.claims.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "claims" {
  bucket = aws_s3_bucket.claims.id
  rule {
    bucket_key_enabled = true
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "claims" {
  bucket = aws_s3_bucket.claims.id
  rule {
    id     = "expire-claim-checks"
    status = "Enabled"
    filter {}
    expiration {
      days = var.claim_check_retention_days
    }
  }
}

data "aws_iam_policy_document" "claims" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.claims.arn, "${aws_s3_bucket.claims.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "claims" {
  count  = var.enforce_secure_transport ? 1 : 0
  bucket = aws_s3_bucket.claims.id
  policy = data.aws_iam_policy_document.claims.json
}

# --- ingest --------------------------------------------------------------------------------------

module "raw_events" {
  source = "../modules/queue"

  name = "${local.name}-raw-events"
  # Lambda's guidance: at least 6 x the function timeout + the batching window.
  visibility_timeout_seconds = 6 * var.normalize.timeout + var.normalize.maximum_batching_window_in_seconds
  max_receive_count          = var.raw_events_max_receive_count
  tags                       = local.tags
}

module "normalize" {
  source = "../modules/lambda_function"

  name               = "${local.name}-normalize"
  image_uri          = var.image_uri
  architecture       = var.architecture
  command            = ["handlers.normalize.handler"]
  timeout            = var.normalize.timeout
  memory_size        = var.normalize.memory_size
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  tags               = local.tags

  environment = merge(local.common_environment, {
    STATE_MACHINE_ARN  = local.state_machine_arn
    REJECTED_QUEUE_URL = module.raw_events.dlq_url
  })

  sqs_source = {
    queue_arn                          = module.raw_events.arn
    batch_size                         = var.normalize.batch_size
    maximum_batching_window_in_seconds = var.normalize.maximum_batching_window_in_seconds
    maximum_concurrency                = var.normalize.maximum_concurrency
  }

  policy_statements = [
    { sid = "StartEvaluation", actions = ["states:StartExecution"], resources = [local.state_machine_arn] },
    { sid = "DeadLetterRejected", actions = ["sqs:SendMessage"], resources = [module.raw_events.dlq_arn] },
    { sid = "ClaimCheckPut", actions = ["s3:PutObject"], resources = ["${aws_s3_bucket.claims.arn}/events/*", "${aws_s3_bucket.claims.arn}/rejected/*"] },
    { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.this.arn] },
  ]
}

# --- evaluate ------------------------------------------------------------------------------------

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
  })

  policy_statements = [
    { sid = "ReadRules", actions = ["dynamodb:GetItem", "dynamodb:Query"], resources = [aws_dynamodb_table.rules.arn] },
    { sid = "KeepState", actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources = [aws_dynamodb_table.state.arn] },
    { sid = "ClaimCheck", actions = ["s3:GetObject", "s3:PutObject"], resources = ["${aws_s3_bucket.claims.arn}/*"] },
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
    RULES_TABLE             = aws_dynamodb_table.rules.name
    STATE_TABLE             = aws_dynamodb_table.state.name
    WEBHOOK_SECRET_PREFIX   = local.secret_prefix
    WEBHOOK_TIMEOUT_SECONDS = tostring(var.trigger_notifications.webhook_timeout_seconds)
    ALLOW_HTTP_WEBHOOKS     = tostring(var.allow_http_webhooks)
  })

  policy_statements = [
    { sid = "ReadTenantSettings", actions = ["dynamodb:GetItem"], resources = [aws_dynamodb_table.rules.arn] },
    { sid = "RecordDeliveries", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources = [aws_dynamodb_table.state.arn] },
    { sid = "ReadWebhookSecrets", actions = ["secretsmanager:GetSecretValue"], resources = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.secret_prefix}*"] },
    { sid = "ClaimCheckGet", actions = ["s3:GetObject"], resources = ["${aws_s3_bucket.claims.arn}/matches/*"] },
    { sid = "UseDataKey", actions = ["kms:Decrypt"], resources = [aws_kms_key.this.arn] },
  ]
}

module "state_machine" {
  source = "../modules/state_machine"

  name                = local.state_machine_name
  definition_template = "${path.module}/../../asl/coachflow.asl.json"
  definition_vars = {
    check_events_function_arn          = module.check_rules.arn
    trigger_notifications_function_arn = module.trigger_notifications.arn
  }
  lambda_function_arns = [module.check_rules.arn, module.trigger_notifications.arn]
  kms_key_arn          = aws_kms_key.this.arn
  log_retention_days   = var.log_retention_days
  tags                 = local.tags
}

# --- re-evaluation -------------------------------------------------------------------------------

module "reevaluation" {
  source = "../modules/schedule"

  name              = "${local.name}-reevaluate"
  state_machine_arn = module.state_machine.arn
  kms_key_arn       = aws_kms_key.this.arn
  tags              = local.tags

  schedules = {
    for tenant, t in var.tenants : "${local.name}-reevaluate-${tenant}" => {
      expression = t.reevaluation_schedule
      timezone   = t.timezone
      input = jsonencode({
        mode           = "reevaluate"
        tenant_id      = tenant
        scheduled_time = "<aws.scheduler.scheduled-time>"
      })
    }
  }
}
