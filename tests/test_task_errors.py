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
