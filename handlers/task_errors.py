"""The errors a state machine task reports, by name (the Lambda runtime's ``errorType`` is the
exception's class name, and the state machine's Retry and Catch match on it).

A task raises a ``TaskError`` subclass for what the state machine handles by name
(``AllNotificationsFailedException``); anything else it did not expect surfaces as
``UnknownException`` (the reference design's name), its cause naming the original error, so the
state machine retries it a couple of times and then catches it into ``Fail`` instead of seeing an
open-ended set of names (``ClientError``, ``KeyError``, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class TaskError(Exception):
    """An error the state machine knows by name."""


class UnknownException(TaskError):
    """An error the task did not expect; the message names the original one."""


def surfaced(handler: F) -> F:
    """Let a handler's TaskErrors through and turn any other exception into UnknownException."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except TaskError:
            raise
        except Exception as exc:
            raise UnknownException(f"{type(exc).__name__}: {exc}"[:4000]) from exc

    return wrapper  # type: ignore[return-value]
