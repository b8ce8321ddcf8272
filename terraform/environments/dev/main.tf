# The dev environment: the coachflow stack in the account the credentials (OIDC role) point to.
provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = "coachflow"
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}

module "coachflow" {
  source = "../../coachflow"

  environment         = "dev"
  image_uri           = var.image_uri
  architecture        = "arm64"
  deletion_protection = false
  log_retention_days  = 30
  alarm_actions       = var.alarm_actions
  alarm_subscriptions = var.alarm_subscriptions
  tenants             = var.tenants
}
