# The stack's input validations, planned against a mocked AWS provider (no AWS calls):
# terraform -chdir=terraform/coachflow test (tests/test_terraform.py runs it).
mock_provider "aws" {
  # Policy documents are checked for valid JSON even when mocked.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "123456789012" }
  }
  override_data {
    target = data.aws_region.current
    values = { name = "eu-west-1" }
  }
  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }
}

variables {
  environment         = "dev"
  alarm_subscriptions = [{ protocol = "email", endpoint = "oncall@example.com" }]
  image_uri           = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers@sha256:0000000000000000000000000000000000000000000000000000000000000000"
}

run "the_defaults_are_valid" {
  command = plan
}

run "claim_checks_must_outlive_every_pointer_to_them" {
  command = plan
  variables {
    claim_check_retention_days = 7
  }
  expect_failures = [var.claim_check_retention_days]
}

run "fifteen_days_of_claim_checks_are_enough" {
  command = plan
  variables {
    claim_check_retention_days = 15
  }
}

run "the_delivery_lease_must_outlast_the_function" {
  command = plan
  variables {
    trigger_notifications = { timeout = 60, delivery_lease_seconds = 60 }
  }
  expect_failures = [var.trigger_notifications]
}

run "a_lease_longer_than_the_function_is_valid" {
  command = plan
  variables {
    trigger_notifications = { timeout = 60, delivery_lease_seconds = 120 }
  }
}

run "the_function_must_have_room_for_one_webhook_request" {
  command = plan
  variables {
    trigger_notifications = { timeout = 8, webhook_timeout_seconds = 5 }
  }
  expect_failures = [var.trigger_notifications]
}

run "plain_http_webhooks_are_refused_outside_local" {
  command = plan
  variables {
    allow_http_webhooks = true
  }
  expect_failures = [var.allow_http_webhooks]
}

run "private_webhook_networks_are_refused_outside_local" {
  command = plan
  variables {
    webhook_allowed_networks = ["10.0.0.0/8"]
  }
  expect_failures = [var.webhook_allowed_networks]
}

run "the_local_environment_may_reach_its_receiver" {
  command = plan
  variables {
    environment              = "local"
    allow_http_webhooks      = true
    webhook_allowed_networks = ["127.0.0.0/8"]
  }
}

run "no_environment_may_allow_every_address" {
  command = plan
  variables {
    environment              = "local"
    webhook_allowed_networks = ["0.0.0.0/0"]
  }
  expect_failures = [var.webhook_allowed_networks]
}

run "the_recent_events_buffer_must_be_shorter_than_the_ledger" {
  command = plan
  variables {
    reevaluation = { buffer_days = 14 }
  }
  expect_failures = [var.reevaluation]
}

run "the_recent_events_buffer_is_kept_whole_days" {
  command = plan
  variables {
    reevaluation = { buffer_days = 0.5 }
  }
  expect_failures = [var.reevaluation]
}

run "a_reevaluation_reruns_at_least_one_event" {
  command = plan
  variables {
    reevaluation = { max_events = 0 }
  }
  expect_failures = [var.reevaluation]
}

run "alarms_must_reach_someone_outside_local" {
  command = plan
  variables {
    alarm_subscriptions = []
  }
  expect_failures = [var.alarm_subscriptions]
}

run "an_existing_topic_is_someone" {
  command = plan
  variables {
    alarm_subscriptions = []
    alarm_actions       = ["arn:aws:sns:eu-west-1:123456789012:oncall"]
  }
}

run "plain_http_alarm_subscriptions_are_refused" {
  command = plan
  variables {
    alarm_subscriptions = [{ protocol = "http", endpoint = "http://pager.example.com/hook" }]
  }
  expect_failures = [var.alarm_subscriptions]
}

run "the_local_environment_may_have_no_alarm_subscribers" {
  command = plan
  variables {
    environment         = "local"
    alarm_subscriptions = []
  }
}
