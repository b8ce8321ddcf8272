# Non-secret settings of dev. image_uri comes from the release pipeline (-var), secrets from
# Secrets Manager at run time: nothing sensitive belongs here.
region = "eu-west-1"
tenants = {
  acme = { reevaluation_schedule = "rate(15 minutes)" }
}
# Who is told when an alarm fires (required outside local): replace with the on-call rotation's
# address or an https endpoint of the paging service.
alarm_subscriptions = [{ protocol = "email", endpoint = "coachflow-oncall-dev@example.com" }]
