# The local environment: the whole stack on the embedded AWS (moto), for the demo and the tests.
# Credentials come from the environment (build.sh exports the emulator's dummy keys).
provider "aws" {
  region                      = var.region
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    cloudwatch     = var.endpoint
    dynamodb       = var.endpoint
    iam            = var.endpoint
    kms            = var.endpoint
    lambda         = var.endpoint
    logs           = var.endpoint
    s3             = var.endpoint
    scheduler      = var.endpoint
    secretsmanager = var.endpoint
    sesv2          = var.endpoint
    sns            = var.endpoint
    sfn            = var.endpoint
    sqs            = var.endpoint
    sts            = var.endpoint
  }
}

data "aws_caller_identity" "current" {}

locals {
  # No image is built locally: the emulator runs the handlers from this checkout. The digest is the
  # hash of the handler sources, so a code change updates the functions exactly as a new image would.
  code_root   = "${path.module}/../../.."
  code_digest = sha256(join("", [for f in sort(fileset(local.code_root, "handlers/**/*.py")) : filesha256("${local.code_root}/${f}")]))
  image_uri   = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.region}.amazonaws.com/coachflow-handlers@sha256:${local.code_digest}"
}

module "coachflow" {
  source = "../../coachflow"

  environment         = "local"
  image_uri           = local.image_uri
  architecture        = "x86_64"
  deletion_protection = false
  allow_http_webhooks = true # the demo's receiver listens on http://127.0.0.1
  # Delivery refuses loopback addresses; the local environment's receivers are on 127.0.0.1.
  webhook_allowed_networks = ["127.0.0.0/8"]
  # The embedded AWS speaks plain HTTP, so a TLS-only bucket policy would deny every request.
  enforce_secure_transport = false
  log_retention_days       = 1
  # The demo's and the tests' tenants send coaching email from these (SES: moto's sent-message store).
  email_identities = ["acme.example", "globex.example"]
  log_level        = "INFO"

  normalize = {
    batch_size                         = 100
    maximum_batching_window_in_seconds = 1
    timeout                            = 30
  }

  # Retries within seconds, not minutes, and a sweep that runs when fired (./build.sh fire-schedule
  # coachflow-local-sweep --group coachflow-local-sweep): tests and the demo decide when work is retried.
  trigger_notifications = { backoff_seconds = 1 }
  # The reference retries (6, doubling) from 1 s instead of 2 s: an execution whose every delivery
  # fails reaches Fail after about a minute instead of two.
  state_machine_retry = { interval_seconds = 1 }
  sweep               = { enabled = false }

  tenants = {
    acme   = { reevaluation_schedule = "rate(1 hour)" }
    globex = { reevaluation_schedule = "cron(0 8 ? * MON-FRI *)", timezone = "Europe/Paris" }
  }
}
