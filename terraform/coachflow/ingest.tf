# Ingest: vendor integrations send raw events to the queue; normalize turns them into batches of
# normalized events and starts one evaluation per batch (rejected records go to the dead-letter queue).

module "raw_events" {
  source = "../modules/queue"

  name = "${local.name}-raw-events"
  # Lambda's guidance: at least 6 x the function timeout + the batching window.
  visibility_timeout_seconds = 6 * var.normalize.timeout + var.normalize.maximum_batching_window_in_seconds
  max_receive_count          = var.raw_events_max_receive_count
  tags                       = local.tags
}

module "normalize" {
  source = "../modules/lambda_function"

  name               = "${local.name}-normalize"
  image_uri          = var.image_uri
  architecture       = var.architecture
  command            = ["handlers.normalize.handler"]
  timeout            = var.normalize.timeout
  memory_size        = var.normalize.memory_size
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  tags               = local.tags

  environment = merge(local.common_environment, {
    STATE_MACHINE_ARN  = local.state_machine_arn
    REJECTED_QUEUE_URL = module.raw_events.dlq_url
    RULES_TABLE        = aws_dynamodb_table.rules.name
  })

  sqs_source = {
    queue_arn                          = module.raw_events.arn
    batch_size                         = var.normalize.batch_size
    maximum_batching_window_in_seconds = var.normalize.maximum_batching_window_in_seconds
    maximum_concurrency                = var.normalize.maximum_concurrency
  }

  policy_statements = [
    { sid = "StartEvaluation", actions = ["states:StartExecution"], resources = [local.state_machine_arn] },
    { sid = "DeadLetterRejected", actions = ["sqs:SendMessage"], resources = [module.raw_events.dlq_arn] },
    { sid = "ReadRegisteredProducers", actions = ["dynamodb:GetItem"], resources = [aws_dynamodb_table.rules.arn] },
    { sid = "ClaimCheckPut", actions = ["s3:PutObject"], resources = [local.claim_check_objects.events, local.claim_check_objects.rejected] },
    { sid = "UseDataKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.this.arn] },
  ]
}
