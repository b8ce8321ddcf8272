# Re-evaluation: per tenant, an EventBridge Scheduler schedule starts the state machine in
# re-evaluation mode (check_rules re-runs the tenant's new or changed rules over its recent events,
# bounded by var.reevaluation, and hands those matches with the due notifications to
# trigger_notifications); and the sweep, which does the same for every tenant with due work.

module "reevaluation" {
  source = "../modules/schedule"

  name              = "${local.name}-reevaluate"
  state_machine_arn = module.state_machine.arn
  kms_key_arn       = aws_kms_key.this.arn
  tags              = local.tags

  schedules = {
    for tenant, t in var.tenants : "${local.name}-reevaluate-${tenant}" => {
      expression = t.reevaluation_schedule
      timezone   = t.timezone
      input = jsonencode({
        mode           = "reevaluate"
        tenant_id      = tenant
        scheduled_time = "<aws.scheduler.scheduled-time>"
      })
    }
  }
}

# The sweep: on a schedule, one re-evaluation for every tenant with due work (notifications failed,
# deferred, or leased by a deliverer that died; a new rule set whose re-run is not finished), so no
# tenant depends on a schedule of its own.
module "sweep" {
  source = "../modules/lambda_function"

  name               = "${local.name}-sweep"
  image_uri          = var.image_uri
  architecture       = var.architecture
  command            = ["handlers.sweep.handler"]
  timeout            = 60
  memory_size        = 256
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  tags               = local.tags

  environment = merge(local.common_environment, {
    STATE_TABLE       = aws_dynamodb_table.state.name
    STATE_MACHINE_ARN = local.state_machine_arn
  })

  policy_statements = [
    { sid = "FindDueWork", actions = ["dynamodb:Query"], resources = ["${aws_dynamodb_table.state.arn}/index/due"] },
    { sid = "StartReevaluations", actions = ["states:StartExecution"], resources = [local.state_machine_arn] },
    { sid = "UseDataKey", actions = ["kms:Decrypt"], resources = [aws_kms_key.this.arn] },
  ]
}

module "sweep_schedule" {
  source = "../modules/schedule"

  name         = "${local.name}-sweep"
  function_arn = module.sweep.arn
  kms_key_arn  = aws_kms_key.this.arn
  tags         = local.tags

  schedules = {
    "${local.name}-sweep" = {
      expression = var.sweep.schedule
      enabled    = var.sweep.enabled
      input      = jsonencode({ scheduled_time = "<aws.scheduler.scheduled-time>" })
    }
  }
}
