output "arn" {
  description = "Source queue ARN."
  value       = aws_sqs_queue.this.arn
}

output "url" {
  description = "Source queue URL."
  value       = aws_sqs_queue.this.url
}

output "name" {
  description = "Source queue name."
  value       = aws_sqs_queue.this.name
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_name" {
  description = "Dead-letter queue name."
  value       = aws_sqs_queue.dlq.name
}

output "message_retention_seconds" {
  description = "How long the source queue keeps a message."
  value       = aws_sqs_queue.this.message_retention_seconds
}

output "dlq_message_retention_seconds" {
  description = "How long the dead-letter queue keeps a message (what depends on dead letters, like claim-checks they point to, must outlive it)."
  value       = aws_sqs_queue.dlq.message_retention_seconds
}

output "encrypted" {
  description = "Whether both queues are encrypted at rest (SSE-SQS), as configured."
  value       = aws_sqs_queue.this.sqs_managed_sse_enabled && aws_sqs_queue.dlq.sqs_managed_sse_enabled
}
