variable "region" {
  description = "AWS region of the prod environment."
  type        = string
  default     = "eu-west-1"
}

variable "image_uri" {
  description = "The handlers image by digest, from the release pipeline (<account>.dkr.ecr.<region>.amazonaws.com/coachflow-handlers@sha256:...)."
  type        = string
}

variable "alarm_actions" {
  description = "SNS topics the on-call rotation subscribes to."
  type        = list(string)
  default     = []
}

variable "alarm_subscriptions" {
  description = "Who the alarm topic notifies (the on-call rotation): SNS subscriptions."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []
}

variable "tenants" {
  description = "Tenants with a periodic re-evaluation schedule."
  type = map(object({
    reevaluation_schedule = string
    timezone              = optional(string, "UTC")
  }))
  default = {}
}
