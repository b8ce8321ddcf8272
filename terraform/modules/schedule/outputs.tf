output "group_name" {
  description = "Schedule group holding every schedule."
  value       = aws_scheduler_schedule_group.this.name
}

output "schedule_arns" {
  description = "Schedule ARNs by name."
  value       = { for k, s in aws_scheduler_schedule.this : k => s.arn }
}

output "role_arn" {
  description = "ARN of the role the scheduler assumes."
  value       = aws_iam_role.this.arn
}

output "role_policy_statements" {
  description = "The statements of the role's inline policy as configured (sid, effect, actions, resources, conditions...), for callers' checks such as terraform/coachflow/tests/guardrails.tftest.hcl."
  value       = data.aws_iam_policy_document.this.statement
}
