# The flow on one screen: records in and their outcomes, executions by result, deliveries by channel
# and result, and the delivery ledger's backlog. The handlers' own metrics are EMF under the
# "Coachflow" namespace with service, environment and function dimensions (SEARCH finds them all).
locals {
  emf = "{Coachflow,environment,function,service} environment=\"${var.environment}\""
  dashboard_widgets = [
    {
      title = "Raw events in (SQS) and their age"
      metrics = [["AWS/SQS", "NumberOfMessagesReceived", "QueueName", module.raw_events.name, { stat = "Sum" }],
      [".", "ApproximateAgeOfOldestMessage", ".", ".", { stat = "Maximum", yAxis = "right" }]]
    },
    {
      title   = "Records: normalized, ignored, rejected"
      metrics = [[{ expression = "SEARCH('${local.emf} MetricName=(\"RecordsNormalized\" OR \"RecordsIgnored\" OR \"RecordsRejected\")', 'Sum', 300)", id = "records" }]]
    },
    {
      title = "Executions by result"
      metrics = [for m in ["ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] :
      ["AWS/States", m, "StateMachineArn", module.state_machine.arn, { stat = "Sum" }]]
    },
    {
      title   = "Deliveries by channel and result"
      metrics = [[{ expression = "SEARCH('${local.emf} Notifications', 'Sum', 300)", id = "deliveries" }]]
    },
    {
      title = "Dead letters waiting"
      metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.raw_events.dlq_name, { stat = "Maximum" }],
      [".", ".", ".", aws_sqs_queue.dead_notifications.name, { stat = "Maximum" }]]
    },
    {
      title = "Function duration p95 (ms)"
      metrics = [for name in values(local.functions) :
      ["AWS/Lambda", "Duration", "FunctionName", name, { stat = "p95" }]]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "flow" {
  dashboard_name = "${local.name}-flow"
  dashboard_body = jsonencode({
    widgets = [for i, w in local.dashboard_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        period  = 300
        metrics = w.metrics
      }
    }]
  })
}
