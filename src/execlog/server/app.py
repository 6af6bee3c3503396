"""Building the ASGI app: routers, authentication, security headers.

One function, :func:`create_app`, turns a :class:`~execlog.Store` into an app; the command
line's ``serve`` only parses options and hands that app to uvicorn, and tests build it directly.
"""

from __future__ import annotations

import hmac
import ipaddress
import urllib.parse
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from execlog.server import api, collector, viewer
from execlog.server.models import JSONAnswer

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from execlog.store import Store

__all__ = ["CSP", "MAX_BODY_BYTES", "create_app", "is_loopback"]

#: Largest ingest body, after decompression (API.md section 5).
MAX_BODY_BYTES = 10 * 1024 * 1024

#: Scripts, styles and requests from this server only; no inline script, style or handler.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_COOKIE = "execlog_token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header (without the port)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """Authentication, host check and security headers around the whole app (pure ASGI).

    - With a token, ``POST`` needs ``Authorization: Bearer TOKEN``; when the server listens
      beyond loopback, every request needs it (or, for the viewer in a browser, the
      ``execlog_token`` cookie set by opening any page once with ``?token=TOKEN``).
    - Served on loopback only (``loopback_only``, as ``execlog serve`` does unless told to
      listen beyond it), a request whose ``Host`` is not a loopback name is refused: a web page
      cannot reach the server through a rebound DNS name.
    - Every response carries a strict Content-Security-Policy and related headers.
    """

    def __init__(
        self, app: ASGIApp, token: str | None, *, public: bool, loopback_only: bool
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self.token = token.encode() if token else None
        self.public = public
        self.loopback_only = loopback_only

    def _matches(self, presented: str | None) -> bool:
        if self.token is None or presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with the headers added to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.loopback_only:
            host = _host_of(request.headers.get("host", "127.0.0.1"))
            if not is_loopback(host):
                await _send_plain(scope, receive, send, 400, "unexpected Host header")
                return
        needs_token = self.token is not None and (
            self.public or request.method not in {"GET", "HEAD"}
        )
        if needs_token:
            bearer = request.headers.get("authorization", "")
            scheme, _, presented = bearer.partition(" ")
            ok = scheme.lower() == "bearer" and self._matches(presented.strip())
            if not ok and request.method in {"GET", "HEAD"}:
                ok = self._matches(request.cookies.get(_COOKIE))
                query_token = request.query_params.get("token")
                if not ok and self._matches(query_token):
                    await _remember_token(scope, receive, send, request, query_token or "")
                    return
            if not ok:
                await _send_plain(scope, receive, send, 401, None)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_plain(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str | None
) -> None:
    body: dict[str, Any] = {"detail": detail or ("unauthorized" if status == 401 else "")}
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    response = JSONAnswer(body, status_code=status, headers=headers)
    response.raw_headers.extend(_SECURITY_HEADERS)
    await response(scope, receive, send)


async def _remember_token(
    scope: Scope, receive: Receive, send: Send, request: Request, token: str
) -> None:
    """Set the viewer's cookie and send the browser to the same page without ``?token=``."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    # One leading slash: "//host/..." would send the browser to another site.
    path = "/" + urllib.parse.quote(request.url.path.lstrip("/"), safe="/")
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    response = Response(status_code=303, headers={"location": target})
    response.set_cookie(_COOKIE, token, httponly=True, samesite="strict", path="/")
    response.raw_headers.extend(_SECURITY_HEADERS)
    await response(scope, receive, send)


def create_app(
    store: Store,
    token: str | None = None,
    *,
    public: bool = False,
    loopback_only: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    ingest_store: Store | None = None,
) -> ASGIApp:
    """The ASGI app serving the viewer at ``/``, the JSON API and the collector.

    Example::

        app = create_app(execlog.open_store("runs.db"))
        uvicorn.run(app, host="127.0.0.1", port=8642)

    Args:
        store: Where the executions are read from and the collector writes to.
        token: The bearer token; with one, ``POST`` needs it (and every request when
            ``public``). Compared in constant time.
        public: The server listens beyond loopback: every request needs the token.
        loopback_only: The server listens on loopback only: refuse requests whose ``Host``
            header is not a loopback name (against DNS rebinding). ``execlog serve`` sets it
            unless ``--host`` is beyond loopback.
        max_body_bytes: Largest ingest body after decompression (413 beyond).
        ingest_store: Where the collector writes, when not ``store``: a second connection to
            the same database, so that a long read never holds up a batch being stored.

    Raises:
        ValueError: ``public`` without a token.

    .. versionadded:: 0.1.0
    """
    if public and not token:
        msg = "a server listening beyond loopback needs a token (--token or EXECLOG_TOKEN)"
        raise ValueError(msg)
    app = FastAPI(
        title="execlog",
        summary="The execution history recorded by execlog: read it, or send records to it.",
        version=_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        default_response_class=JSONAnswer,
    )
    app.state.store = store
    app.state.ingest_store = ingest_store or store
    app.state.max_body_bytes = max_body_bytes
    app.include_router(api.router)
    app.include_router(collector.router)
    app.include_router(viewer.router)
    viewer.mount_static(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and viewer.wants_page(request):
            return viewer.not_found(request, str(exc.detail))
        return JSONAnswer({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        del request
        errors = [{k: v for k, v in e.items() if k in {"loc", "msg", "type"}} for e in exc.errors()]
        return JSONAnswer({"detail": errors}, status_code=422)

    return Guard(app, token, public=public, loopback_only=loopback_only and not public)


def _version() -> str:
    from execlog import __version__  # noqa: PLC0415 - resolved lazily by the package

    return str(__version__)
