# Non-secret settings of prod. image_uri comes from the release pipeline (-var), secrets from
# Secrets Manager at run time: nothing sensitive belongs here.
region = "eu-west-1"
tenants = {
  acme = { reevaluation_schedule = "rate(15 minutes)" }
}
