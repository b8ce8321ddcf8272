output "endpoint" {
  description = "The embedded AWS endpoint this environment was applied to."
  value       = var.endpoint
}

output "coachflow" {
  description = "Everything the stack exposes (queues, functions, state machine, tables, schedules)."
  value       = module.coachflow
}
