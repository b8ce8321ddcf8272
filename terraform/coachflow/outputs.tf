output "raw_events_queue_url" {
  description = "Where vendor integrations send raw events (message attributes tenant_id and source)."
  value       = module.raw_events.url
}

output "raw_events_queue_arn" {
  description = "ARN of the raw-events queue."
  value       = module.raw_events.arn
}

output "raw_events_dlq_url" {
  description = "Dead letters of raw events: rejected records (attribute rejection_reason) and records that failed maxReceiveCount times."
  value       = module.raw_events.dlq_url
}

output "raw_events_dlq_arn" {
  description = "ARN of the raw-events dead-letter queue."
  value       = module.raw_events.dlq_arn
}

output "state_machine_arn" {
  description = "The evaluation state machine."
  value       = module.state_machine.arn
}

output "state_machine_definition" {
  description = "The rendered ASL definition, as deployed."
  value       = module.state_machine.definition
}

output "function_names" {
  description = "Lambda function names by stage."
  value = {
    normalize             = module.normalize.name
    check_rules           = module.check_rules.name
    trigger_notifications = module.trigger_notifications.name
    sweep                 = module.sweep.name
  }
}

output "function_arns" {
  description = "Lambda function ARNs by stage."
  value = {
    normalize             = module.normalize.arn
    check_rules           = module.check_rules.arn
    trigger_notifications = module.trigger_notifications.arn
    sweep                 = module.sweep.arn
  }
}

output "rules_table" {
  description = "DynamoDB table of tenant rules and settings."
  value       = aws_dynamodb_table.rules.name
}

output "state_table" {
  description = "DynamoDB table of thresholds, suppression and deliveries."
  value       = aws_dynamodb_table.state.name
}

output "claims_bucket" {
  description = "S3 bucket for claim-checks."
  value       = aws_s3_bucket.claims.bucket
}

output "claim_check_prefixes" {
  description = "Key prefixes of the claim-check bucket by kind (events, rejected, matches, recent); the functions' S3 permissions are scoped to them."
  value       = local.claim_check_prefixes
}

output "webhook_secret_prefix" {
  description = "Secrets Manager name prefix of the tenants' webhook signing secrets (<prefix><tenant_id>)."
  value       = local.secret_prefix
}

output "schedule_group" {
  description = "EventBridge Scheduler group of the re-evaluation schedules."
  value       = module.reevaluation.group_name
}

output "schedule_names" {
  description = "Re-evaluation schedule names by tenant."
  value       = { for tenant in keys(var.tenants) : tenant => "${local.name}-reevaluate-${tenant}" }
}

output "kms_key_arn" {
  description = "The environment's customer-managed KMS key."
  value       = aws_kms_key.this.arn
}

output "dead_notifications_queue_url" {
  description = "Notifications whose every delivery attempt failed, with the reason (attribute reason; body: tenant, attempts, reason, match)."
  value       = aws_sqs_queue.dead_notifications.url
}

output "sweep_schedule" {
  description = "The sweep's schedule: name and group (fire it now with ./build.sh fire-schedule NAME --group GROUP)."
  value       = { name = "${local.name}-sweep", group = module.sweep_schedule.group_name }
}
