# The queue module's guardrails, planned and applied against a mocked AWS provider (no AWS calls,
# nothing created): terraform -chdir=terraform/modules/queue test (tests/test_terraform_modules.py
# runs it).
mock_provider "aws" {}

# ARNs as SQS makes them: arn:...:<name>, the DLQ's being the source queue's with "-dlq".
override_resource {
  target = aws_sqs_queue.this
  values = {
    arn = "arn:aws:sqs:eu-west-1:123456789012:coachflow-test-raw-events"
  }
}
override_resource {
  target = aws_sqs_queue.dlq
  values = {
    arn = "arn:aws:sqs:eu-west-1:123456789012:coachflow-test-raw-events-dlq"
    id  = "https://sqs.eu-west-1.amazonaws.com/123456789012/coachflow-test-raw-events-dlq"
  }
}

variables {
  name = "coachflow-test-raw-events"
}

run "both_queues_are_encrypted" {
  command = plan

  assert {
    condition     = aws_sqs_queue.this.sqs_managed_sse_enabled && aws_sqs_queue.dlq.sqs_managed_sse_enabled
    error_message = "Both queues must be encrypted at rest (SSE-SQS)."
  }
}

run "dead_letters_are_kept_the_sqs_maximum_longer_than_the_source_queue" {
  command = plan

  assert {
    condition     = aws_sqs_queue.dlq.message_retention_seconds == 1209600
    error_message = "The dead-letter queue must keep messages 14 days (the SQS maximum) by default."
  }
  assert {
    condition     = aws_sqs_queue.dlq.message_retention_seconds > aws_sqs_queue.this.message_retention_seconds
    error_message = "The dead-letter queue must keep messages longer than its source queue."
  }
}

run "a_message_received_five_times_is_dead_lettered" {
  command = apply

  assert {
    condition     = aws_sqs_queue.dlq.name == "${var.name}-dlq"
    error_message = "The dead-letter queue is named <name>-dlq (the redrive allow policy derives the source queue's ARN from it)."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.this.redrive_policy) == { deadLetterTargetArn = aws_sqs_queue.dlq.arn, maxReceiveCount = 5 }
    error_message = "The source queue must dead-letter a message into its own DLQ after max_receive_count (default 5) receives."
  }
}

run "the_visibility_timeout_is_the_one_sized_for_the_consumer" {
  command = plan

  variables {
    visibility_timeout_seconds = 6 * 30 + 5
  }

  assert {
    condition     = aws_sqs_queue.this.visibility_timeout_seconds == 185
    error_message = "The source queue's visibility timeout is the one given (the caller sizes it to its consumer: 6 x its timeout + the batching window)."
  }
}

run "only_the_source_queue_may_dead_letter_or_be_redriven_into" {
  command = apply

  assert {
    condition     = aws_sqs_queue_redrive_allow_policy.dlq.queue_url == aws_sqs_queue.dlq.id
    error_message = "The redrive allow policy belongs to the dead-letter queue."
  }
  assert {
    condition = jsonencode(jsondecode(aws_sqs_queue_redrive_allow_policy.dlq.redrive_allow_policy)) == jsonencode({
      redrivePermission = "byQueue", sourceQueueArns = [aws_sqs_queue.this.arn]
    })
    error_message = "Only the source queue may use the dead-letter queue."
  }
}

run "a_dlq_that_forgets_first_is_refused" {
  command = plan

  variables {
    message_retention_seconds     = 1209600
    dlq_message_retention_seconds = 1209600
  }
  expect_failures = [aws_sqs_queue.this]
}

run "sqs_keeps_nothing_longer_than_14_days" {
  command = plan

  variables {
    dlq_message_retention_seconds = 1209601
  }
  expect_failures = [var.dlq_message_retention_seconds]
}

run "fewer_than_five_receives_are_refused" {
  command = plan

  variables {
    max_receive_count = 2
  }
  expect_failures = [var.max_receive_count]
}
