"""A handler's errors reach the state machine by the names its Retry and Catch know."""

from __future__ import annotations

import pytest

from handlers.task_errors import TaskError, UnknownException, surfaced
from handlers.trigger_notifications import AllNotificationsFailedException


def test_an_unexpected_error_surfaces_as_unknown_exception_naming_the_original():
    @surfaced
    def handler(event, context):
        return {}[event]

    with pytest.raises(UnknownException, match=r"^KeyError: 'x'$") as caught:
        handler("x", None)
    assert isinstance(caught.value.__cause__, KeyError)  # the traceback keeps the original


def test_errors_the_state_machine_knows_pass_unchanged():
    @surfaced
    def handler(event, context):
        raise AllNotificationsFailedException("none delivered")

    with pytest.raises(AllNotificationsFailedException, match="none delivered"):
        handler({}, None)
    assert issubclass(AllNotificationsFailedException, TaskError)


def test_a_result_passes_unchanged():
    assert surfaced(lambda event, context: {"ok": event})(1, None) == {"ok": 1}


def test_a_failure_quoted_by_all_notifications_failed_names_no_recipient():
    # That message reaches the execution's history and X-Ray: an AWS error gives its code only.
    from botocore.exceptions import ClientError

    from handlers import webhook
    from handlers.trigger_notifications import _shown

    refused = "Email address is not verified. The following identities failed the check in region EU-WEST-1: jane.doe@corp.example"
    ses = ClientError({"Error": {"Code": "MessageRejected", "Message": refused}}, "SendEmail")
    assert "jane.doe" not in _shown(ses) and _shown(ses) == "SendEmail: MessageRejected"
    assert "jane.doe" in str(ses)  # what the logs and the ledger keep
    ours = webhook.DeliveryError("webhook https://hooks.example.com did not complete within the delivery deadline")
    assert _shown(ours) == str(ours)
