output "arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "The function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping, if any."
  value       = try(aws_lambda_event_source_mapping.sqs[0].uuid, null)
}

output "role_policy_statements" {
  description = "The statements of the role's inline policy as configured (sid, effect, actions, resources, conditions...), for callers' checks such as terraform/coachflow/tests/guardrails.tftest.hcl."
  value       = data.aws_iam_policy_document.this.statement
}
