"""moto's front door (its WSGI application) and what the layers put in front of it share.

Each layer (``emulator.requestlog``, ``emulator.faults``, ``emulator.retries``) is a function of the
app behind it, the request and ``start_response``; ``wrap`` puts it in front of what is installed
already, so the last one installed sees a request first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Layer = Callable[[WsgiApp, dict[str, Any], StartResponse], Iterable[bytes]]

# SigV4: "AWS4-HMAC-SHA256 Credential=<access key>/<date>/<region>/<service>/aws4_request, ..."
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def access_key(authorization: str) -> str | None:
    found = _ACCESS_KEY.search(authorization)
    return found.group(1) if found else None


def service(authorization: str) -> str:
    """The signing name: lambda, dynamodb, s3, states, sqs... ("" when unsigned)."""
    found = _SERVICE.search(authorization)
    return found.group(1) if found else ""


def drain(environ: dict[str, Any]) -> None:
    """Read the body of a request answered without running it (an injected fault, a retry answered
    again), as the server expects of an answered request."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ.get("wsgi.input")
    while length > 0 and stream is not None:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)


def wrap(layer: Layer) -> None:
    """Put ``layer`` in front of moto's front door as it is now (for this process)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    inner = DomainDispatcherApplication.__call__

    def call(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return layer(functools.partial(inner, self), environ, start_response)

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
