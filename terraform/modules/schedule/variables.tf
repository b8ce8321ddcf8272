variable "name" {
  description = "Name prefix for the schedule group and role."
  type        = string
}

variable "state_machine_arn" {
  description = "The state machine every schedule starts (set this or function_arn)."
  type        = string
  default     = null
}

variable "function_arn" {
  description = "The Lambda function every schedule invokes (set this or state_machine_arn)."
  type        = string
  default     = null

  validation {
    condition     = (var.function_arn == null) != (var.state_machine_arn == null)
    error_message = "Set exactly one target: state_machine_arn or function_arn."
  }
}

variable "schedules" {
  description = "Schedules by name: an EventBridge Scheduler expression (rate(...), or cron(...) with 6 fields and one of day-of-month/day-of-week '?'), its time zone and the execution input."
  type = map(object({
    expression = string
    timezone   = optional(string, "UTC")
    input      = string
    enabled    = optional(bool, true)
  }))

  validation {
    condition = alltrue([for s in values(var.schedules) :
      can(regex("^rate\\(\\d+ (minute|minutes|hour|hours|day|days)\\)$", s.expression)) ||
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", s.expression))
    ])
    error_message = "Each expression must be rate(N unit) or cron(min hour day-of-month month day-of-week year)."
  }

  validation {
    condition = alltrue([for s in values(var.schedules) :
      !startswith(s.expression, "cron(") || length(regexall("\\?", s.expression)) == 1
    ])
    error_message = "In a cron expression exactly one of day-of-month and day-of-week must be '?'."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the schedules' stored input."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
