"""What the ASGI and WSGI middleware share: a request's name, inputs and lineage.

Both record one root execution per request (trigger kind ``http``): named ``"METHOD /route"``
when the framework exposes the route template, else ``"METHOD /path"``; inputs the method,
path, query parameters and an allow-list of headers (``Cookie``, ``Set-Cookie``,
``Authorization`` and ``Proxy-Authorization`` are never stored, whatever the list says); output
the response's status code. The caller's lineage comes from execlog's headers
(``inject(style="http")``) or a W3C ``traceparent``, through :func:`execlog.extract`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from execlog._execution import ExecutionHandle, execution
from execlog._propagation import extract

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DEFAULT_HEADERS",
    "NEVER_STORED",
    "RESPONSE_HEADER",
    "Middleware",
    "allowed_headers",
    "conclude",
    "request_execution",
]

#: Request headers recorded by default (lower case).
DEFAULT_HEADERS: tuple[str, ...] = (
    "accept",
    "content-length",
    "content-type",
    "host",
    "referer",
    "user-agent",
    "x-forwarded-for",
    "x-request-id",
)

#: Headers never recorded, even when asked for.
NEVER_STORED = frozenset({"authorization", "cookie", "proxy-authorization", "set-cookie"})

#: The response header that names the request's execution.
RESPONSE_HEADER = "Execlog-Execution-Id"

#: Headers that carry lineage: read for it, not recorded as inputs.
_LINEAGE = frozenset(
    {"execlog-parent-id", "execlog-correlation-id", "execlog-sampled", "traceparent", "tracestate"}
)


def allowed_headers(names: Iterable[str]) -> frozenset[str]:
    """The lower-cased header names to record, without those never stored."""
    if isinstance(names, str):
        msg = "headers must be a collection of header names, not a str"
        raise TypeError(msg)
    return frozenset(name.lower() for name in names) - NEVER_STORED


class Middleware:
    """What both middleware keep: the wrapped app, the headers to record, the ``kind``."""

    def __init__(
        self, app: Any, *, headers: Iterable[str] = DEFAULT_HEADERS, kind: str = "http"
    ) -> None:
        """Record each request of ``app``; ``headers`` says which request headers to keep."""
        self.app = app
        self.record = allowed_headers(headers)
        self.kind = kind


def conclude(
    handle: ExecutionHandle,
    route: str | None,
    status: int | None,
    *,
    failed: bool = False,
    cancelled: bool = False,
    server_error: bool = True,
) -> None:
    """Name a request's execution after its route, its output the status code, and its status.

    ``failed``: the app raised (the exception keeps its own status); ``cancelled``: the client
    went away first; ``server_error``: a status of 500 or more is an ``error``.
    """
    if route:
        handle.name = f"{handle.name.split(' ', 1)[0]} {route}"
    if status is not None:
        handle.set_output(status)
    if failed:
        return
    if cancelled:
        handle.set_status("cancelled")
    elif server_error and status is not None and status >= 500:
        handle.set_status("error")


def _query(raw: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def request_execution(
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    record: frozenset[str],
    *,
    kind: str = "http",
) -> ExecutionHandle:
    """An (unentered) execution for one request; ``headers`` as (name, value) pairs."""
    lineage: dict[str, str] = {}
    kept: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in _LINEAGE:
            lineage[lowered] = value
        elif lowered in record:
            kept[lowered] = f"{kept[lowered]}, {value}" if lowered in kept else value
    inputs: dict[str, Any] = {"method": method, "path": path}
    if query:
        inputs["query"] = _query(query)
    if kept:
        inputs["headers"] = kept
    return execution(
        f"{method} {path}",
        kind=kind,
        inputs=inputs,
        trigger_kind="http",
        context=extract(lineage) if lineage else None,
    )
