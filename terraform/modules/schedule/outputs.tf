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
