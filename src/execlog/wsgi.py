"""WSGI middleware: one root execution per HTTP request (Flask, Django, any WSGI app).

Example::

    from execlog.wsgi import ExecutionMiddleware

    app.wsgi_app = ExecutionMiddleware(app.wsgi_app)     # Flask
    application = ExecutionMiddleware(get_wsgi_application())   # Django

The same rules as :mod:`execlog.asgi`: ``"METHOD /route"`` (Flask's URL rule, such as
``/orders/<int:order_id>``, or a template the app puts in ``environ["execlog.route"]``; else
the path), trigger kind ``http``, inputs ``method``, ``path``,
``query`` and the allowed ``headers``, output the status code, ``error`` for a 5xx answer or an
exception, ``cancelled`` when the server stops reading the body before its end (the client went
away), an ``Execlog-Execution-Id`` response header. The execution ends when the server closes
the response body, so a streamed body is timed whole.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from execlog._guard import guard
from execlog._web import RESPONSE_HEADER, Middleware, conclude, request_execution

if TYPE_CHECKING:
    from execlog._execution import ExecutionHandle

__all__ = ["ROUTE_KEY", "ExecutionMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Where an app (or a framework hook) may put the matched route template for the name.
ROUTE_KEY = "execlog.route"


def _headers(environ: Environ) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), str(value)


def _route(environ: Environ) -> str | None:
    """The matched route template: ``environ["execlog.route"]``, or Flask's URL rule."""
    route = environ.get(ROUTE_KEY)
    if not isinstance(route, str) or not route:
        # Werkzeug keeps the request object in the environ; Flask sets its matched url_rule.
        rule = getattr(getattr(environ.get("werkzeug.request"), "url_rule", None), "rule", None)
        route = str(environ.get("SCRIPT_NAME", "")) + rule if isinstance(rule, str) else None
    return route or None


class ExecutionMiddleware(Middleware):
    """Wrap a WSGI application so that each request is a root execution.

    Args:
        app: The WSGI application.
        headers: Request headers to record (case-insensitive); ``Cookie``, ``Set-Cookie``,
            ``Authorization`` and ``Proxy-Authorization`` are never recorded.
        kind: The executions' ``kind`` (default ``"http"``).

    .. versionadded:: 0.2.0
    """

    app: WSGIApp

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Start the request's execution; it ends when the server closes the body."""
        handle = self._begin(environ)
        if handle is None:  # execlog failed to start it (reported): serve unrecorded
            return self.app(environ, start_response)
        response = _Response(handle, environ)
        handle.__enter__()
        try:
            body = self.app(environ, response.wrap(start_response))
        except BaseException as exc:
            response.finish(exc)
            raise
        return response.body(body)

    def _begin(self, environ: Environ) -> ExecutionHandle | None:
        with guard:
            return request_execution(
                str(environ.get("REQUEST_METHOD", "GET")),
                str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "") or "/"),
                str(environ.get("QUERY_STRING", "")),
                _headers(environ),
                self.record,
                kind=self.kind,
            )
        return None


class _Response:
    """One request's response: its status, and the end of its execution."""

    __slots__ = ("done", "environ", "handle", "route", "status")

    def __init__(self, handle: ExecutionHandle, environ: Environ) -> None:
        self.handle = handle
        self.environ = environ
        self.status: int | None = None
        self.route: str | None = None
        self.done = False

    def wrap(self, start_response: StartResponse) -> StartResponse:
        # an unsampled request has no execution to name
        handle = self.handle  # unsampled (or kept only if it fails): no id to send
        extra = (
            [(RESPONSE_HEADER, handle.execution_id)]
            if handle.sampled and handle.execution_id
            else []
        )

        def wrapped(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            with guard:
                self.status = int(status.split(" ", 1)[0])
                # Now, while a framework's request is still at hand (Flask drops it later).
                self.route = _route(self.environ)
            return start_response(status, [*headers, *extra], *exc_info)

        return wrapped

    def body(self, body: Iterable[bytes]) -> Iterator[bytes]:
        """The app's body, ending the execution when it is exhausted or closed early."""
        exhausted = False
        try:
            yield from body
            exhausted = True
        except GeneratorExit:  # closed before its end: the server stopped reading
            raise
        except BaseException as exc:
            self.finish(exc)
            raise
        finally:
            close = getattr(body, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                if not self.done:
                    self.finish(None, cancelled=not exhausted)

    def finish(self, exc: BaseException | None, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        handle = self.handle
        with guard:
            route = self.route or _route(self.environ)
            conclude(handle, route, self.status, failed=exc is not None, cancelled=cancelled)
        if exc is None:
            handle.__exit__(None, None, None)
        else:
            handle.__exit__(type(exc), exc, exc.__traceback__)
