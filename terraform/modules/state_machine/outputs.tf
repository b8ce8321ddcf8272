output "arn" {
  description = "State machine ARN."
  value       = aws_sfn_state_machine.this.arn
}

output "name" {
  description = "State machine name."
  value       = aws_sfn_state_machine.this.name
}

output "definition" {
  description = "The rendered definition, as deployed."
  value       = local.definition
}

output "role_arn" {
  description = "ARN of the state machine's role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "The state machine's execution log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "role_policy_statements" {
  description = "The statements of the role's inline policy as configured (sid, effect, actions, resources, conditions...), for callers' checks such as terraform/coachflow/tests/guardrails.tftest.hcl."
  value       = data.aws_iam_policy_document.this.statement
}
