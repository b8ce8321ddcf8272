# The coachflow stack, one per environment:
#   raw-events queue (+DLQ) -> normalize -> StartExecution -> state machine
#     CheckEventsForRuleMatch -> FoundMatchingRules -> TriggerNotifications
#   EventBridge Scheduler -> state machine (re-evaluation mode, per tenant)
#
# One file per concern: kms.tf (the key), storage.tf (tables, claim-check bucket), ingest.tf (queue,
# normalize), evaluate.tf (check_rules, trigger_notifications, state machine), reevaluate.tf
# (schedules), alarms.tf. This file holds the data sources and the locals they all share.
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "${var.name_prefix}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  tags       = merge({ Application = "coachflow", Environment = var.environment }, var.tags)

  # Predictable ARNs break the cycle between the functions (which start executions) and the state
  # machine (which invokes the functions).
  state_machine_name = "${local.name}-evaluate"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  secret_prefix      = "coachflow/${var.environment}/tenants/"

  common_environment = {
    COACHFLOW_ENV                = var.environment
    POWERTOOLS_SERVICE_NAME      = "coachflow"
    POWERTOOLS_METRICS_NAMESPACE = "Coachflow"
    POWERTOOLS_LOG_LEVEL         = var.log_level
    CLAIMS_BUCKET                = aws_s3_bucket.claims.bucket
  }
}
