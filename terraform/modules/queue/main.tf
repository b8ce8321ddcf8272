# A source queue and its dead-letter queue. Encryption at rest is SQS-managed (SSE-SQS): producers
# (vendor integrations) can send without a grant on a customer-managed KMS key.
resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "this" {
  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  sqs_managed_sse_enabled    = true
  tags                       = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > var.message_retention_seconds
      error_message = "The dead-letter queue must keep messages longer than its source queue."
    }
  }
}

# Only this queue may use the DLQ, and redrive (StartMessageMoveTask) may move messages back.
# The source queue's ARN is the DLQ's without "-dlq" (same partition, region, account; the names
# are "<name>" and "<name>-dlq"), so this waits only for the DLQ, not for the source queue: every
# SQS resource waits about 25 s for its attributes to settle (the provider's consecutive reads), and
# the source queue and this policy now settle side by side instead of one after the other. SQS does
# not need the source queue to exist for its ARN to be listed here.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [trimsuffix(aws_sqs_queue.dlq.arn, "-dlq")]
  })
}
