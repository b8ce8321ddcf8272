# Coaching channels: the SES identities coaching email is sent from. The other channels (Slack,
# Teams, the learning platform) need no infrastructure: their credentials are per-tenant secrets,
# <secret prefix><tenant>/<channel>, created by operators (docs/operations.md), never by Terraform,
# so that no credential is in tfvars or state.

resource "aws_sesv2_email_identity" "coaching" {
  for_each       = toset(var.email_identities)
  email_identity = each.value
  tags           = local.tags
}

locals {
  email_identity_arns = [for i in var.email_identities : "arn:${local.partition}:ses:${local.region}:${local.account_id}:identity/${i}"]
}
