# What an on-call engineer needs to know about: something is dead-lettered, an evaluation failed,
# a stage is erroring. Each alarm notifies var.alarm_actions and points at its runbook section.
locals {
  alarms = merge(
    {
      "raw-events-dlq-not-empty" = {
        description = "Raw events were dead-lettered (rejected or failed repeatedly). Runbook: docs/operations.md#dead-letters"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = module.raw_events.dlq_name }
        statistic   = "Maximum"
      }
      "dead-notifications-not-empty" = {
        description = "Notifications were dead-lettered after every delivery attempt failed. Runbook: docs/operations.md#dead-notifications"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = aws_sqs_queue.dead_notifications.name }
        statistic   = "Maximum"
      }
      "executions-failed" = {
        description = "Evaluation executions failed. Runbook: docs/operations.md#failed-executions"
        namespace   = "AWS/States"
        metric      = "ExecutionsFailed"
        dimensions  = { StateMachineArn = module.state_machine.arn }
        statistic   = "Sum"
      }
    },
    {
      for stage, function in {
        normalize             = module.normalize.name
        check-rules           = module.check_rules.name
        trigger-notifications = module.trigger_notifications.name
        sweep                 = module.sweep.name
        } : "${stage}-errors" => {
        description = "The ${stage} stage raised errors. Runbook: docs/operations.md#alarms"
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = function }
        statistic   = "Sum"
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
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
