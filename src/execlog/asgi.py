"""ASGI middleware: one root execution per HTTP request or websocket connection.

Example::

    from execlog.asgi import ExecutionMiddleware

    app = ExecutionMiddleware(app)                      # Starlette, FastAPI, any ASGI app
    app.add_middleware(ExecutionMiddleware)             # or through the framework

Each request is recorded as ``"METHOD /route/template"`` (Starlette and FastAPI expose the
route; other apps get the path), trigger kind ``http``, inputs ``method``, ``path``, ``query``
and the allowed ``headers``, output the status code. A 5xx answer is recorded as ``error``, a
client that disconnects before the response is complete as ``cancelled``, an exception from
the app as ``error`` (and re-raised unchanged). The execution ends when the last byte of the
body has been sent, so a streaming response is timed whole. Every response carries an
``Execlog-Execution-Id`` header. Websocket connections are one execution each
(``"WEBSOCKET /path"``, output the close code); lifespan events pass straight through.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from execlog._guard import guard
from execlog._web import RESPONSE_HEADER, Middleware, conclude, request_execution

if TYPE_CHECKING:
    from execlog._execution import ExecutionHandle

__all__ = ["ExecutionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = RESPONSE_HEADER.lower().encode("latin-1")


def _route_name(scope: Scope) -> str | None:
    """The route template the framework matched (Starlette/FastAPI set ``scope["route"]``)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return None
    return str(scope.get("root_path") or "") + template


class ExecutionMiddleware(Middleware):
    """Wrap an ASGI application so that each request is a root execution.

    Args:
        app: The ASGI application.
        headers: Request headers to record (case-insensitive); ``Cookie``, ``Set-Cookie``,
            ``Authorization`` and ``Proxy-Authorization`` are never recorded.
        kind: The executions' ``kind`` (default ``"http"``).

    .. versionadded:: 0.2.0
    """

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app for one connection, recorded unless it is a lifespan one."""
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        handle = self._begin(scope)
        if handle is None:  # execlog failed to start it (reported): serve unrecorded
            await self.app(scope, receive, send)
            return
        state = _Exchange(handle, websocket=kind == "websocket")
        with handle:
            failed = True
            try:
                await self.app(scope, state.wrap_receive(receive), state.wrap_send(send))
                failed = False
            finally:
                self._end(scope, state, failed=failed)

    def _begin(self, scope: Scope) -> ExecutionHandle | None:
        with guard:
            return self._request(scope)
        return None

    def _request(self, scope: Scope) -> ExecutionHandle:
        headers = (
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope.get("headers") or ()
        )
        method = "WEBSOCKET" if scope["type"] == "websocket" else str(scope.get("method", "GET"))
        path = str(scope.get("root_path") or "") + str(scope.get("path") or "/")
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        return request_execution(method, path, query, headers, self.record, kind=self.kind)

    def _end(self, scope: Scope, state: _Exchange, *, failed: bool) -> None:
        with guard:
            self._describe(scope, state, failed=failed)

    @staticmethod
    def _describe(scope: Scope, state: _Exchange, *, failed: bool) -> None:
        """Name, output and status from what the app did (an exception keeps its own status)."""
        conclude(
            state.handle,
            _route_name(scope),
            state.status,
            failed=failed,
            cancelled=state.disconnected and not state.complete,
            server_error=not state.websocket,
        )


class _Exchange:
    """What the middleware learns from the messages of one connection."""

    __slots__ = ("complete", "disconnected", "handle", "status", "websocket")

    def __init__(self, handle: ExecutionHandle, *, websocket: bool) -> None:
        self.handle = handle
        self.websocket = websocket
        self.status: int | None = None
        self.complete = False  # the whole response (or the close) was sent
        self.disconnected = False

    def wrap_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            kind = message.get("type")
            if kind == "http.disconnect":
                self.disconnected = True
            elif kind == "websocket.disconnect":
                self.disconnected = self.complete = True
                self.status = message.get("code", 1000)
            return message

        return wrapped

    def wrap_send(self, send: Send) -> Send:
        # an unsampled request has no execution to name
        header = (_HEADER, self.handle.execution_id.encode("latin-1"))
        extra = [header] if self.handle.sampled and self.handle.execution_id else []

        async def wrapped(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                self.status = message.get("status")
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            elif kind == "http.response.body" and not message.get("more_body", False):
                self.complete = True
            elif kind == "websocket.accept":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            elif kind == "websocket.close":
                self.complete = True
                self.status = message.get("code", 1000)
            await send(message)

        return wrapped
