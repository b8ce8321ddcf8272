variable "environment" {
  description = "Environment name (local, dev, staging, prod); part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lowercase letters, digits or dashes."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "coachflow"
}

variable "image_uri" {
  description = "The handlers image by digest (<registry>/<repo>@sha256:<hex>); every function runs it with its own command."
  type        = string
}

variable "architecture" {
  description = "Instruction set the image was built for (single-architecture image)."
  type        = string
  default     = "arm64"
}

variable "tenants" {
  description = "Tenants with a periodic re-evaluation schedule (EventBridge Scheduler expression, UTC unless timezone is set): each run retries the tenant's due notifications and re-runs its new or changed rules over its recent events. Tenants without one are still evaluated in real time, and re-evaluated by the sweep."
  type = map(object({
    reevaluation_schedule = string
    timezone              = optional(string, "UTC")
  }))
  default = {}

  validation {
    condition     = alltrue([for t in keys(var.tenants) : can(regex("^[a-z0-9][a-z0-9-]{0,31}$", t))])
    error_message = "Tenant ids are 1-32 lowercase letters, digits or dashes."
  }
}

variable "email_identities" {
  description = "SES identities (domains or addresses) the tenants' coaching email is sent from: each tenant's channels.email.sender must be one of them or in one of their domains. The functions may send from these only. Verification (DKIM records for a domain) is an operations step: docs/operations.md."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for i in var.email_identities : can(regex("^([A-Za-z0-9._%+-]+@)?[a-z0-9-]+(\\.[a-z0-9-]+)+$", i))])
    error_message = "Each email identity is a domain (acme.example) or an address (coaching@acme.example)."
  }
}

variable "normalize" {
  description = "Sizing of the normalize stage: SQS batch, batching window, Lambda timeout/memory and concurrency."
  type = object({
    batch_size                         = optional(number, 100)
    maximum_batching_window_in_seconds = optional(number, 5)
    timeout                            = optional(number, 60)
    memory_size                        = optional(number, 512)
    maximum_concurrency                = optional(number, 10)
  })
  default = {}
}

variable "check_rules" {
  description = "Sizing of CheckEventsForRuleMatch."
  type = object({
    timeout     = optional(number, 60)
    memory_size = optional(number, 512)
  })
  default = {}
}

variable "trigger_notifications" {
  description = "TriggerNotifications: sizing, the webhook timeout, the delivery lease (default: the function timeout + 60 s; it must outlast the function) and the base of the backoff between attempts (doubling, at most an hour)."
  type = object({
    timeout                 = optional(number, 60)
    memory_size             = optional(number, 256)
    webhook_timeout_seconds = optional(number, 5)
    delivery_lease_seconds  = optional(number)
    backoff_seconds         = optional(number, 60)
  })
  default = {}

  validation {
    # A lease shorter than the function's run would let a retry deliver what a live deliverer is
    # still sending: a duplicate.
    condition     = var.trigger_notifications.delivery_lease_seconds == null || try(var.trigger_notifications.delivery_lease_seconds > var.trigger_notifications.timeout + 10, false)
    error_message = "trigger_notifications.delivery_lease_seconds must exceed the function timeout by more than 10 seconds, or be left unset (timeout + 60)."
  }

  validation {
    condition     = var.trigger_notifications.webhook_timeout_seconds + 5 < var.trigger_notifications.timeout
    error_message = "trigger_notifications.timeout must leave room for one webhook request and the deadline margin (webhook_timeout_seconds + 5 s)."
  }

  validation {
    condition     = var.trigger_notifications.backoff_seconds >= 1 && var.trigger_notifications.backoff_seconds <= 3600
    error_message = "trigger_notifications.backoff_seconds must be between 1 and 3600."
  }
}

variable "state_machine_retry" {
  description = "How the state machine retries a failed task (the Lambda service's transient errors, timeouts, and TriggerNotifications' AllNotificationsFailedException): the first retry after interval_seconds, each next one backoff_rate times later, max_attempts retries. Defaults: the reference design's."
  type = object({
    interval_seconds = optional(number, 2)
    max_attempts     = optional(number, 6)
    backoff_rate     = optional(number, 2.0)
  })
  default = {}

  validation {
    condition = (
      var.state_machine_retry.interval_seconds >= 1 && floor(var.state_machine_retry.interval_seconds) == var.state_machine_retry.interval_seconds
      && var.state_machine_retry.max_attempts >= 0 && var.state_machine_retry.max_attempts <= 99 && floor(var.state_machine_retry.max_attempts) == var.state_machine_retry.max_attempts
      && var.state_machine_retry.backoff_rate >= 1
    )
    error_message = "state_machine_retry: interval_seconds is a whole number >= 1, max_attempts a whole number from 0 to 99, backoff_rate >= 1.0 (Step Functions' own bounds)."
  }
}

variable "sweep" {
  description = "The sweep: how often it starts a re-evaluation for every tenant with due work (notifications failed, deferred, or leased by a deliverer that died; a new rule set whose re-run over the recent events is not finished)."
  type = object({
    schedule = optional(string, "rate(5 minutes)")
    enabled  = optional(bool, true)
  })
  default = {}
}

variable "reevaluation" {
  description = "Re-evaluation of a tenant's recent events under a new rule set: how many days each batch's events are kept (buffer_days; shorter than the notification ledger's 14 days, so what was notified before is still known) and how many events one re-evaluation re-runs at most (max_events, oldest batches first; the rest continues at the next re-evaluation)."
  type = object({
    buffer_days = optional(number, 1)
    max_events  = optional(number, 10000)
  })
  default = {}

  validation {
    # S3 lifecycle rules count whole days; the ledger keeps a notification 14 days after its last write.
    condition     = floor(var.reevaluation.buffer_days) == var.reevaluation.buffer_days && var.reevaluation.buffer_days >= 1 && var.reevaluation.buffer_days <= 13
    error_message = "reevaluation.buffer_days must be a whole number of days from 1 to 13: shorter than the notification ledger's retention (14 days), so re-evaluation never notifies again what the ledger forgot."
  }

  validation {
    condition     = floor(var.reevaluation.max_events) == var.reevaluation.max_events && var.reevaluation.max_events >= 1 && var.reevaluation.max_events <= 100000
    error_message = "reevaluation.max_events must be a whole number from 1 to 100000."
  }
}

variable "raw_events_max_receive_count" {
  description = "Receives of a raw-events message before SQS moves it to the DLQ."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every log group."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "Handler log level (DEBUG, INFO, WARNING, ERROR)."
  type        = string
  default     = "INFO"
}

variable "access_log_retention_days" {
  description = "Days the claims bucket's S3 server access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "claim_check_retention_days" {
  description = "Days before claim-check objects (oversized events, rejected records and match lists) expire. At least 15: a pointer may wait in the dead-letter queue (14 days) or in an execution that can be redriven (14 days)."
  type        = number
  default     = 15

  validation {
    # Claim-checks must outlive every pointer to them: SQS keeps dead letters at most 14 days (from
    # when they were first sent) and Step Functions redrives executions up to 14 days after they
    # stopped; one day more covers the lifecycle rule's rounding to midnight UTC.
    condition     = var.claim_check_retention_days >= 15
    error_message = "claim_check_retention_days must be at least 15: dead letters (14 days) and redrivable executions (14 days) hold pointers to claim-checks, which must not expire first."
  }
}

variable "alarm_actions" {
  description = "More SNS topic ARNs notified when an alarm fires, beside the environment's own alarm topic (an existing on-call topic)."
  type        = list(string)
  default     = []
}

variable "alarm_subscriptions" {
  description = "Who the environment's alarm topic notifies: SNS subscriptions (protocol email, https, sqs, lambda...; endpoint). Outside local, this or alarm_actions must name someone."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []

  validation {
    condition     = var.environment == "local" || length(var.alarm_subscriptions) + length(var.alarm_actions) > 0
    error_message = "Alarms must reach someone outside the local environment: set alarm_subscriptions (e.g. the on-call address) or alarm_actions."
  }
  validation {
    condition     = alltrue([for s in var.alarm_subscriptions : contains(["email", "email-json", "https", "sqs", "lambda", "sms", "firehose"], s.protocol)])
    error_message = "alarm_subscriptions protocols are email, email-json, https, sqs, lambda, sms or firehose (plain http is refused)."
  }
}

variable "alarm_thresholds" {
  description = "Alarm thresholds: the age of the oldest raw event (seconds) and failed deliveries per 5 minutes (they are retried; a few are normal)."
  type = object({
    raw_events_age_seconds          = optional(number, 300)
    failed_deliveries_per_5_minutes = optional(number, 20)
  })
  default = {}
}

variable "allow_http_webhooks" {
  description = "Allow plain-http webhook URLs: the local environment only (its receiver listens on http://127.0.0.1); everywhere else https is required."
  type        = bool
  default     = false

  validation {
    condition     = !var.allow_http_webhooks || var.environment == "local"
    error_message = "allow_http_webhooks is for the local environment only: webhooks elsewhere must use https."
  }
}

variable "webhook_allowed_networks" {
  description = "Networks webhooks may reach although delivery refuses them otherwise (loopback, private, link-local...): the local environment only, for its receiver on 127.0.0.1."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.webhook_allowed_networks) == 0 || var.environment == "local"
    error_message = "webhook_allowed_networks is for the local environment only: elsewhere webhooks reach public addresses only."
  }

  validation {
    condition     = alltrue([for n in var.webhook_allowed_networks : can(cidrhost(n, 0)) && !endswith(n, "/0")])
    error_message = "webhook_allowed_networks holds CIDR blocks (e.g. 127.0.0.0/8), none of them /0."
  }
}

variable "enforce_secure_transport" {
  description = "Deny non-TLS requests to the claim-check bucket. Only the local environment (whose embedded AWS speaks plain HTTP on 127.0.0.1) turns this off."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the DynamoDB tables from deletion (on for shared environments)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
