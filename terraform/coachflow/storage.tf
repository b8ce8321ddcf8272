# What the stack keeps: the rules and state tables, and the claim-check bucket.

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

# Evaluation state: threshold counters, suppression windows, the notification ledger.
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
  attribute {
    name = "due_shard"
    type = "S"
  }
  attribute {
    name = "due_at"
    type = "N"
  }

  # Sparse: only notifications that are not finished carry due_shard/due_at, so the sweep finds every
  # tenant with due work without scanning the table (handlers/ledger.py: due_tenants).
  global_secondary_index {
    name            = "due"
    hash_key        = "due_shard"
    range_key       = "due_at"
    projection_type = "KEYS_ONLY"
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

# Claim-check: what is too big to travel inside a Step Functions payload or an SQS message.
locals {
  # The bucket's four kinds of objects, by key prefix. The Python module handlers/claim_check.py
  # uses the same prefixes, and a test keeps them equal. Every S3 statement of the functions' roles is
  # derived from this map (claim_check_objects), so each function gets exactly the prefixes it needs.
  claim_check_prefixes = {
    events   = "events/"   # normalized events too big for a Step Functions payload: normalize writes, check_rules reads
    rejected = "rejected/" # rejected raw records too big for a dead-letter message: normalize writes, operators read
    matches  = "matches/"  # match lists too big for a state output: check_rules writes, trigger_notifications reads
    recent   = "recent/"   # each batch's events, for re-evaluation (reevaluation.buffer_days): check_rules writes and reads
  }
  claim_check_objects = { for kind, prefix in local.claim_check_prefixes : kind => "${aws_s3_bucket.claims.arn}/${prefix}*" }
}

resource "aws_s3_bucket" "claims" {
  # checkov:skip=CKV_AWS_21: claim-checks are written once and expire within days; versions would only keep expired personal data longer
  # checkov:skip=CKV_AWS_144: a transient buffer of one region's pipeline: replicating it elsewhere would spread personal data for no recovery benefit
  # checkov:skip=CKV2_AWS_62: nothing reacts to new claim-checks: pointers travel in messages and executions
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
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  # The recent-events buffer is kept only as long as re-evaluation may re-run it (where two rules
  # expire an object, S3 honours the shorter). Deletion can lag: readers also skip older objects.
  rule {
    id     = "expire-recent-events"
    status = "Enabled"
    filter {
      prefix = local.claim_check_prefixes.recent
    }
    expiration {
      days = var.reevaluation.buffer_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "claims" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A Deny: the wildcard takes every S3 action away from plain-HTTP requests (grants stay explicit).
    actions   = ["s3:*"]
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

# Server access logs of the claims bucket: who read or wrote which claim-check, for incident review.
# A bucket of their own, SSE-S3 (S3 delivers access logs only to buckets with SSE-S3 default
# encryption), written only by the logging service for the claims bucket of this account.
resource "aws_s3_bucket" "access_logs" {
  # checkov:skip=CKV_AWS_18: the access-log bucket does not log its own access (a loop)
  # checkov:skip=CKV_AWS_21: log objects are written once by S3 and expire; versions add nothing
  # checkov:skip=CKV_AWS_144: logs stay in the region of the pipeline they describe
  # checkov:skip=CKV2_AWS_62: nothing reacts to new log objects
  # checkov:skip=CKV_AWS_145: S3 server access logging delivers only to buckets encrypted with SSE-S3, not SSE-KMS
  bucket        = "${local.name}-access-logs-${local.account_id}-${local.region}"
  force_destroy = !var.deletion_protection
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "S3ServerAccessLogsOfTheClaimsBucket"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/claims/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.claims.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  dynamic "statement" {
    for_each = var.enforce_secure_transport ? [1] : []
    content {
      sid    = "DenyInsecureTransport"
      effect = "Deny"
      # A Deny: the wildcard takes every S3 action away from plain-HTTP requests (grants stay explicit).
      actions   = ["s3:*"]
      resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
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
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json
}

resource "aws_s3_bucket_logging" "claims" {
  bucket        = aws_s3_bucket.claims.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "claims/"
  depends_on    = [aws_s3_bucket_policy.access_logs]
}
