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
