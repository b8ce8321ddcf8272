variable "name" {
  description = "Function name."
  type        = string
}

variable "image_uri" {
  description = "The shared handlers image, by digest (repo@sha256:...), never by a moving tag."
  type        = string

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image_uri))
    error_message = "image_uri must pin the image by digest: <registry>/<repo>@sha256:<64 hex>."
  }
}

variable "command" {
  description = "The image CMD for this function: the handler, e.g. [\"handlers.check_rules.handler\"]."
  type        = list(string)
}

variable "architecture" {
  description = "Instruction set of the image (single-architecture images only)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 60
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 leaves the function unreserved."
  type        = number
  default     = -1
}

variable "environment" {
  description = "Environment variables (configuration only: never secrets; those are read from Secrets Manager at run time)."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "Least-privilege IAM statements for the function's role, beyond writing its own logs; conditions narrow a statement further (e.g. s3:prefix on s3:ListBucket)."
  type = list(object({
    sid        = string
    actions    = list(string)
    resources  = list(string)
    conditions = optional(list(object({ test = string, variable = string, values = list(string) })), [])
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.policy_statements : alltrue([for a in s.actions : !strcontains(a, "*")])])
    error_message = "Wildcard actions are not allowed: name each action."
  }

  validation {
    # Least privilege names what a statement is about. The few actions that have no resource-level
    # permissions (X-Ray's, in main.tf) are granted by the module itself, each with its reason.
    condition     = alltrue([for s in var.policy_statements : !contains(s.resources, "*")])
    error_message = "A statement must name its resources: \"*\" is not allowed."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention, in days (at least 1: the logs must expire)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    # The functions' logs carry personal data: 0 (or no retention at all) would keep them forever.
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1: the function's logs must expire."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the log group and environment variables."
  type        = string
}

variable "sqs_source" {
  description = "Optional SQS event source: the queue, batch size and batching window. Partial batch responses are always on."
  type = object({
    queue_arn                          = string
    batch_size                         = optional(number, 10)
    maximum_batching_window_in_seconds = optional(number, 0)
    maximum_concurrency                = optional(number, 10)
  })
  default = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
