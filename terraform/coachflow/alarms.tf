# What an on-call engineer needs to know about: raw events waiting too long, something
# dead-lettered, an evaluation failed or timed out or hit the payload limit, a stage erroring or
# throttled, notifications piling up undelivered. Each alarm notifies the environment's alarm topic
# (and var.alarm_actions) and names its runbook section.

# The alarm topic: its subscriptions come from tfvars (alarm_subscriptions); outside local an
# environment must name someone (a validation in variables.tf). Encrypted with the stack's key,
# which lets CloudWatch publish (kms.tf).
resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each  = { for s in var.alarm_subscriptions : "${s.protocol}:${s.endpoint}" => s }
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

# States.DataLimitExceeded has no metric of its own: counted from the state machine's execution log.
resource "aws_cloudwatch_log_metric_filter" "data_limit_exceeded" {
  name           = "${local.name}-data-limit-exceeded"
  log_group_name = module.state_machine.log_group_name
  pattern        = "\"States.DataLimitExceeded\""
  metric_transformation {
    name      = "DataLimitExceeded"
    namespace = "Coachflow/${var.environment}"
    value     = "1"
  }
}

locals {
  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
  functions = {
    normalize             = module.normalize.name
    check-rules           = module.check_rules.name
    trigger-notifications = module.trigger_notifications.name
    sweep                 = module.sweep.name
  }
  alarms = merge(
    {
      "raw-events-waiting" = {
        description = "Raw events have waited longer than ${var.alarm_thresholds.raw_events_age_seconds} s to be normalized (normalize down, throttled or behind). Runbook: docs/operations.md#raw-events-waiting"
        namespace   = "AWS/SQS"
        metric      = "ApproximateAgeOfOldestMessage"
        dimensions  = { QueueName = module.raw_events.name }
        statistic   = "Maximum"
        threshold   = var.alarm_thresholds.raw_events_age_seconds
      }
      "raw-events-dlq-not-empty" = {
        description = "Raw events were dead-lettered (rejected or failed repeatedly). Runbook: docs/operations.md#dead-letters"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = module.raw_events.dlq_name }
        statistic   = "Maximum"
        threshold   = 0
      }
      "dead-notifications-not-empty" = {
        description = "Notifications were dead-lettered after every delivery attempt failed. Runbook: docs/operations.md#dead-notifications"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = aws_sqs_queue.dead_notifications.name }
        statistic   = "Maximum"
        threshold   = 0
      }
      "executions-failed" = {
        description = "Evaluation executions failed. Runbook: docs/operations.md#failed-executions"
        namespace   = "AWS/States"
        metric      = "ExecutionsFailed"
        dimensions  = { StateMachineArn = module.state_machine.arn }
        statistic   = "Sum"
        threshold   = 0
      }
      "executions-timed-out" = {
        description = "Evaluation executions timed out. Runbook: docs/operations.md#failed-executions"
        namespace   = "AWS/States"
        metric      = "ExecutionsTimedOut"
        dimensions  = { StateMachineArn = module.state_machine.arn }
        statistic   = "Sum"
        threshold   = 0
      }
      "data-limit-exceeded" = {
        description = "A state's input or output exceeded Step Functions' payload limit (States.DataLimitExceeded). Runbook: docs/operations.md#failed-executions"
        namespace   = "Coachflow/${var.environment}"
        metric      = "DataLimitExceeded"
        dimensions  = {}
        statistic   = "Sum"
        threshold   = 0
      }
      "notifications-failing" = {
        description = "Notification deliveries failed and wait in the ledger for a retry (a tenant's receiver or channel is down). Runbook: docs/operations.md#dead-notifications"
        namespace   = "Coachflow"
        metric      = "NotificationsFailed"
        dimensions  = { service = "coachflow", environment = var.environment, function = module.trigger_notifications.name }
        statistic   = "Sum"
        threshold   = var.alarm_thresholds.failed_deliveries_per_5_minutes
      }
    },
    {
      for stage, function in local.functions : "${stage}-errors" => {
        description = "The ${stage} stage raised errors. Runbook: docs/operations.md#alarms"
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = function }
        statistic   = "Sum"
        threshold   = 0
      }
    },
    {
      for stage, function in local.functions : "${stage}-throttled" => {
        description = "The ${stage} stage was throttled (concurrency exhausted). Runbook: docs/operations.md#alarms"
        namespace   = "AWS/Lambda"
        metric      = "Throttles"
        dimensions  = { FunctionName = function }
        statistic   = "Sum"
        threshold   = 0
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}
