# EventBridge Scheduler schedules with one target each (a state machine to start, or a function to
# invoke), and a role that may start or invoke exactly that target.
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-scheduler-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

locals {
  target_arn = coalesce(var.state_machine_arn, var.function_arn)
}

data "aws_iam_policy_document" "this" {
  dynamic "statement" {
    for_each = var.state_machine_arn == null ? [] : [var.state_machine_arn]
    content {
      sid       = "StartTheStateMachine"
      actions   = ["states:StartExecution"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.function_arn == null ? [] : [var.function_arn]
    content {
      sid       = "InvokeTheFunction"
      actions   = ["lambda:InvokeFunction"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "DecryptScheduleInput"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-scheduler-policy"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.name
  tags = var.tags
}

resource "aws_scheduler_schedule" "this" {
  for_each = var.schedules

  name                         = each.key
  group_name                   = aws_scheduler_schedule_group.this.name
  schedule_expression          = each.value.expression
  schedule_expression_timezone = each.value.timezone
  state                        = each.value.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = local.target_arn
    role_arn = aws_iam_role.this.arn
    input    = each.value.input

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }
}
