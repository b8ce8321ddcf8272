# Re-evaluation: per tenant, an EventBridge Scheduler schedule starts the state machine in
# re-evaluation mode (retrying pending notifications).

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
