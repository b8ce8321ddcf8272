variable "name" {
  description = "Queue name; the dead-letter queue is named \"<name>-dlq\"."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays invisible. For a Lambda source: at least 6 x the function timeout + the batching window."
  type        = number
  default     = 360
}

variable "message_retention_seconds" {
  description = "How long the source queue keeps a message."
  type        = number
  default     = 345600 # 4 days
}

variable "dlq_message_retention_seconds" {
  description = "How long the dead-letter queue keeps a message; must exceed the source queue's retention so nothing expires before it can be redriven."
  type        = number
  default     = 1209600 # 14 days, the SQS maximum

  validation {
    condition     = var.dlq_message_retention_seconds <= 1209600
    error_message = "SQS keeps messages for at most 14 days (1209600 seconds)."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue (AWS recommends at least 5 for a Lambda source)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 5
    error_message = "max_receive_count must be at least 5, or throttled Lambda polls can dead-letter healthy messages."
  }
}

variable "tags" {
  description = "Tags for both queues."
  type        = map(string)
  default     = {}
}
