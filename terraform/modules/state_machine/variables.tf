variable "name" {
  description = "State machine name."
  type        = string
}

variable "definition_template" {
  description = "Path of the ASL template (asl/*.json), rendered with templatefile()."
  type        = string
}

variable "definition_vars" {
  description = "Values for the template's $${...} placeholders."
  type        = map(string)
}

variable "lambda_function_arns" {
  description = "Functions the state machine may invoke (its role gets lambda:InvokeFunction on exactly these; no wildcards)."
  type        = list(string)

  validation {
    # The role may invoke these and their versions and aliases: a wildcard would open every function.
    condition     = alltrue([for arn in var.lambda_function_arns : !strcontains(arn, "*")])
    error_message = "lambda_function_arns names each function: wildcards are not allowed."
  }
}

variable "log_level" {
  description = "Execution logging level: ALL, ERROR or FATAL (OFF is refused)."
  type        = string
  default     = "ERROR"

  validation {
    # A failed execution must leave a trail; the coachflow stack also counts States.DataLimitExceeded
    # from this log (alarms.tf), which OFF would silence.
    condition     = contains(["ALL", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be ALL, ERROR or FATAL: execution logging cannot be turned off."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the execution log group, in days (at least 1: the logs must expire)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    # Execution logs can hold personal data (error causes quote inputs): 0 would keep them forever.
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1: the execution logs must expire."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the log group and the state machine's data."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
