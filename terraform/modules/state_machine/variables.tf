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
  description = "Functions the state machine may invoke (its role gets lambda:InvokeFunction on exactly these)."
  type        = list(string)
}

variable "log_level" {
  description = "Execution logging level: ALL, ERROR, FATAL or OFF."
  type        = string
  default     = "ERROR"
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the execution log group."
  type        = number
  default     = 30
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
