# One Lambda function of the shared handlers image: its role, its log group and, optionally, its
# SQS event source with partial batch responses.
data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_338: retention is the environment's choice (log_retention_days: prod 90 days); these logs carry personal data
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid = "SendTraces"
    # Active tracing: X-Ray's write actions have no resource-level permissions (AWS's
    # AWSXRayDaemonWriteAccess grants them on "*" too).
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.sqs_source == null ? [] : [var.sqs_source]
    content {
      sid       = "ConsumeSourceQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      resources = [statement.value.queue_arn]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-policy"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116: invoked synchronously only (the SQS event source, the state machine, the scheduler's sweep): failures go to the SQS DLQ and the state machine's Catch, never to an async DLQ
  # checkov:skip=CKV_AWS_117: reaches only AWS APIs and tenants' public HTTPS endpoints; delivery refuses private addresses, so a VPC would add NAT cost and no isolation
  # checkov:skip=CKV_AWS_272: code signing does not apply to container images; the image is deployed by digest from a reviewed build
  function_name                  = var.name
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.architecture]
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  image_config {
    command = var.command
  }

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = var.environment
  }

  # The log group exists (with retention and encryption) before the function can create its own.
  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "sqs" {
  count                              = var.sqs_source == null ? 0 : 1
  event_source_arn                   = var.sqs_source.queue_arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.sqs_source.batch_size
  maximum_batching_window_in_seconds = var.sqs_source.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_source.maximum_concurrency
  }
}
