output "coachflow" {
  description = "Everything the stack exposes (queues, functions, state machine, tables, schedules)."
  value       = module.coachflow
}
