"""Web middleware (API.md section 7): one root execution per request, ASGI and WSGI.

Real applications: Starlette and FastAPI through httpx's ASGI transport and a real uvicorn
server process, Flask through the standard library's WSGI server on a real socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

import execlog
from conftest import rows, run_example
from execlog._recorder import RECORDER
from execlog.asgi import ExecutionMiddleware as ASGIMiddleware
from execlog.wsgi import ExecutionMiddleware as WSGIMiddleware

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from starlette.requests import Request
    from starlette.websockets import WebSocket

starlette = pytest.importorskip("starlette")
flask = pytest.importorskip("flask")

from flask import Flask, Response, stream_with_context  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse, StreamingResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402

SECRET_HEADERS = {
    "Cookie": "session=abc123",
    "Authorization": "Bearer sk-live-999",
    "User-Agent": "pytest-agent",
    "X-Request-Id": "req-7",
}


@execlog.traced_execution(name="lookup")
def lookup(item_id: int) -> dict[str, int]:
    return {"id": item_id}


def execlog_now_ns() -> int:
    """Now on the clock rows are timed by (the monotonic clock mapped by the process's anchor),
    which may be up to ``_clock.MAX_DRIFT_NS`` away from ``time.time_ns()``."""
    return time.perf_counter_ns() + RECORDER.clock_offset


def one(db: str, name: str) -> dict[str, Any]:
    found = [r for r in rows(db) if r["name"] == name]
    assert 1 == len(found), [r["name"] for r in rows(db)]
    return found[0]


def finished(db: str, count: int) -> list[dict[str, Any]]:
    """The rows once ``count`` of them have ended: a WSGI server closes a response's body (the
    end of its execution) just after the client has read it."""
    deadline = time.monotonic() + 20
    while True:
        found = rows(db)
        if sum(r["status"] != "running" for r in found) >= count:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def assert_no_secrets(db: str) -> None:
    with open(db, "rb") as f:
        data = f.read()
    for secret in (b"abc123", b"sk-live-999"):
        assert secret not in data


# -- ASGI ---------------------------------------------------------------------------------------


def starlette_app() -> Starlette:
    async def item(request: Request) -> JSONResponse:
        if request.query_params.get("fail") == "raise":
            msg = "handler failed"
            raise LookupError(msg)
        if request.query_params.get("fail") == "500":
            return JSONResponse({"error": "upstream"}, status_code=503)
        return JSONResponse(lookup(int(request.path_params["item_id"])))

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.05)
                yield f"chunk {i}\n".encode()
            request.app.state.last_chunk_ns = execlog_now_ns()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close(code=1000)

    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/stream", stream),
            WebSocketRoute("/ws", echo),
        ]
    )


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


class TestASGI:
    def test_one_root_per_request(self, db: str, implementation: str) -> None:
        app = ASGIMiddleware(starlette_app())

        async def go() -> httpx.Response:
            async with asgi_client(app) as client:
                return await client.get("/items/7?q=a&q=b&x=1", headers=SECRET_HEADERS)

        response = asyncio.run(go())
        assert 200 == response.status_code
        row = one(db, "GET /items/{item_id}")
        assert response.headers["Execlog-Execution-Id"] == row["execution_id"]
        assert ("http", "success", None) == (
            row["trigger_kind"],
            row["status"],
            row["parent_execution_id"],
        )
        assert 200 == json.loads(row["output"])
        inputs = json.loads(row["inputs"])
        assert {"method": "GET", "path": "/items/7", "query": {"q": ["a", "b"], "x": "1"}} == {
            k: inputs[k] for k in ("method", "path", "query")
        }
        assert {"user-agent": "pytest-agent", "x-request-id": "req-7", "host": "test"} == {
            k: v for k, v in inputs["headers"].items() if k != "accept"
        } | {"host": inputs["headers"]["host"]}
        assert "cookie" not in inputs["headers"]
        assert "authorization" not in inputs["headers"]
        assert_no_secrets(db)
        child = one(db, "lookup")
        assert row["execution_id"] == child["parent_execution_id"]

    def test_continues_the_callers_lineage(self, db: str) -> None:
        app = ASGIMiddleware(starlette_app())
        with execlog.execution("caller") as caller:
            headers = execlog.inject({}, style="http")

        async def go() -> None:
            async with asgi_client(app) as client:
                await client.get("/items/1", headers=headers)

        asyncio.run(go())
        row = one(db, "GET /items/{item_id}")
        assert caller.execution_id == row["parent_execution_id"]
        assert caller.correlation_id == row["correlation_id"]
        assert "http" == row["trigger_kind"]

    def test_errors_and_5xx(self, db: str, implementation: str) -> None:
        app = ASGIMiddleware(starlette_app())

        async def go() -> int:
            async with asgi_client(app) as client:
                with pytest.raises(LookupError, match="handler failed"):
                    await client.get("/items/1?fail=raise")
                return (await client.get("/items/2?fail=500")).status_code

        assert 503 == asyncio.run(go())
        raised, answered = (r for r in rows(db) if r["name"] == "GET /items/{item_id}")
        assert ("error", "LookupError") == (raised["status"], raised["error_type"])
        assert ("error", 503) == (answered["status"], json.loads(answered["output"]))

    def test_streaming_response_is_timed_whole(self, db: str) -> None:
        inner = starlette_app()
        app = ASGIMiddleware(inner)

        async def go() -> str:
            async with asgi_client(app) as client:
                return (await client.get("/stream")).text

        assert "chunk 0\nchunk 1\nchunk 2\n" == asyncio.run(go())
        row = one(db, "GET /stream")
        assert row["duration_ms"] >= 150
        assert row["ended_at"] * 1000 >= inner.state.last_chunk_ns - 1_000_000

    def test_client_disconnect_is_cancelled(self, db: str) -> None:
        """The app sees ``http.disconnect`` before it could answer: ``cancelled``."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            message = await receive()
            assert "http.disconnect" == message["type"]

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            raise AssertionError(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/upload",
            "headers": [],
            "query_string": b"",
        }
        asyncio.run(ASGIMiddleware(app)(scope, receive, send))
        assert "cancelled" == one(db, "POST /upload")["status"]

    def test_lifespan_passes_through_and_websockets_are_one_each(self, db: str) -> None:
        """Driven message by message, as a server does."""
        app = ASGIMiddleware(starlette_app())

        async def talk(scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Any]:
            queue = list(incoming)
            sent: list[Any] = []

            async def receive() -> dict[str, Any]:
                return queue.pop(0)

            async def send(message: Any) -> None:
                sent.append(message)

            await app(scope, receive, send)
            return sent

        lifespan = asyncio.run(
            talk(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
            )
        )
        assert ["lifespan.startup.complete", "lifespan.shutdown.complete"] == [
            m["type"] for m in lifespan
        ]
        scope = {
            "type": "websocket",
            "path": "/ws",
            "query_string": b"",
            "headers": [(b"host", b"test")],
            "subprotocols": [],
        }
        sent = asyncio.run(
            talk(
                scope,
                [
                    {"type": "websocket.connect"},
                    {"type": "websocket.receive", "text": "hello"},
                ],
            )
        )
        accept, reply, close = sent
        assert "HELLO" == reply["text"]
        assert (1000, "websocket.close") == (close["code"], close["type"])
        row = one(db, "WEBSOCKET /ws")
        assert dict(accept["headers"])[b"execlog-execution-id"] == row["execution_id"].encode()
        assert ("success", 1000) == (row["status"], json.loads(row["output"]))
        assert 1 == len(rows(db))  # lifespan startup/shutdown recorded nothing

    def test_fastapi_route_template(self, db: str) -> None:
        fastapi = pytest.importorskip("fastapi")
        api = fastapi.FastAPI()

        @api.get("/users/{user_id}/orders")
        def orders(user_id: int) -> dict[str, int]:  # a sync handler: runs on a worker thread
            return lookup(user_id)

        api.add_middleware(ASGIMiddleware)

        async def go() -> httpx.Response:
            async with asgi_client(api) as client:
                return await client.get("/users/5/orders")

        assert {"id": 5} == asyncio.run(go()).json()
        row = one(db, "GET /users/{user_id}/orders")
        assert row["execution_id"] == one(db, "lookup")["parent_execution_id"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


UVICORN_APP = """
import asyncio, os
import execlog
from execlog.asgi import ExecutionMiddleware
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

@execlog.traced_execution(name="work")
async def work(n):
    await asyncio.sleep(0.02)
    return n

async def hello(request):
    return PlainTextResponse(str(await work(int(request.path_params["n"]))))

async def slow(request):
    async def chunks():
        for i in range(100):
            yield b"x" * 65536
            await asyncio.sleep(0.05)
    return StreamingResponse(chunks())

app = ExecutionMiddleware(Starlette(routes=[Route("/hello/{n}", hello), Route("/slow", slow)]))
"""


@pytest.fixture
def uvicorn_server(tmp_path: Path, db: str) -> Iterator[str]:
    """A real uvicorn process serving a Starlette app wrapped in the middleware."""
    pytest.importorskip("uvicorn")
    (tmp_path / "webapp.py").write_text(UVICORN_APP)
    port = free_port()
    env = {**os.environ, "EXECLOG_DB": db, "PYTHONPATH": str(tmp_path)}
    env.pop("EXECLOG_STRICT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/hello/0", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # uvicorn shuts down gracefully, then re-raises the signal
        out = proc.communicate(timeout=30)[0]
        assert proc.returncode in (0, -15), out.decode(errors="replace")
        assert b"Traceback" not in out, out.decode(errors="replace")


class TestUvicorn:
    def test_concurrent_requests_and_a_cancelled_one(self, uvicorn_server: str, db: str) -> None:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda n: httpx.get(f"{uvicorn_server}/hello/{n}", timeout=30), range(1, 21)
                )
            )
        assert [str(n) for n in range(1, 21)] == [a.text for a in answers]
        ids = {a.headers["execlog-execution-id"] for a in answers}
        with httpx.stream("GET", uvicorn_server + "/slow", timeout=30) as response:
            next(response.iter_bytes())  # the first chunk, then the client goes away
        time.sleep(0.5)
        import sqlite3

        deadline = time.monotonic() + 20
        while True:  # the server process's writer commits on its own schedule
            conn = sqlite3.connect(db)
            try:
                found = conn.execute(
                    "SELECT name, status, execution_id, parent_execution_id FROM executions"
                ).fetchall()
            finally:
                conn.close()
            slow = [r for r in found if r[0] == "GET /slow" and r[1] != "running"]
            if len([r for r in found if r[0] == "GET /hello/{n}"]) >= 21 and slow:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        requests = {r[2]: r for r in found if r[0] == "GET /hello/{n}"}
        assert ids <= set(requests)
        work = [r for r in found if r[0] == "work"]
        assert 21 == len(work)
        assert all(r[3] in requests for r in work)
        assert "cancelled" == slow[0][1]


# -- WSGI ---------------------------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return None


def flask_app(state: dict[str, Any]) -> Flask:
    app = Flask("webtest")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        if item_id == 0:
            msg = "no item zero"
            raise LookupError(msg)
        return lookup(item_id)

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for i in range(3):
                time.sleep(0.05)
                yield f"chunk {i}\n"
            state["last_chunk_ns"] = execlog_now_ns()

        return Response(stream_with_context(chunks()), mimetype="text/plain")

    @app.get("/forever")
    def forever() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(1000):
                yield b"y" * 65536
                time.sleep(0.01)

        return Response(chunks(), mimetype="application/octet-stream")

    return app


@pytest.fixture
def wsgi_server(db: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Flask behind the middleware, served by the standard library on a real socket."""
    state: dict[str, Any] = {}
    app = flask_app(state)
    app.wsgi_app = WSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
        server.server_close()


class TestWSGI:
    def test_one_root_per_request_concurrently(
        self, wsgi_server: tuple[str, dict[str, Any]], db: str
    ) -> None:
        url, _ = wsgi_server
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda n: httpx.get(f"{url}/items/{n}?a=1", headers=SECRET_HEADERS, timeout=30),
                    range(1, 13),
                )
            )
        assert [{"id": n} for n in range(1, 13)] == [a.json() for a in answers]
        found = finished(db, 24)
        requests = {r["execution_id"]: r for r in found if r["name"] == "GET /items/<int:item_id>"}
        assert {a.headers["Execlog-Execution-Id"] for a in answers} == set(requests)
        for row in requests.values():
            assert ("http", "success", 200) == (
                row["trigger_kind"],
                row["status"],
                json.loads(row["output"]),
            )
            inputs = json.loads(row["inputs"])
            assert {"a": "1"} == inputs["query"]
            assert "pytest-agent" == inputs["headers"]["user-agent"]
            assert not {"cookie", "authorization"} & set(inputs["headers"])
        lookups = [r for r in found if r["name"] == "lookup"]
        assert 12 == len(lookups)
        assert {r["parent_execution_id"] for r in lookups} == set(requests)
        assert_no_secrets(db)

    def test_an_exception_in_a_handler(
        self, wsgi_server: tuple[str, dict[str, Any]], db: str
    ) -> None:
        url, _ = wsgi_server
        assert 500 == httpx.get(f"{url}/items/0", timeout=30).status_code
        (row,) = finished(db, 1)
        assert ("error", 500) == (row["status"], json.loads(row["output"]))

    def test_streaming_is_timed_whole(
        self, wsgi_server: tuple[str, dict[str, Any]], db: str
    ) -> None:
        url, state = wsgi_server
        assert "chunk 0\nchunk 1\nchunk 2\n" == httpx.get(f"{url}/stream", timeout=30).text
        (row,) = finished(db, 1)
        assert row["duration_ms"] >= 150
        assert row["ended_at"] * 1000 >= state["last_chunk_ns"] - 1_000_000

    def test_a_client_that_goes_away_is_cancelled(
        self, wsgi_server: tuple[str, dict[str, Any]], db: str
    ) -> None:
        url, _ = wsgi_server
        with httpx.stream("GET", f"{url}/forever", timeout=30) as response:
            next(response.iter_bytes())
        deadline = time.monotonic() + 20
        while True:
            found = [r for r in rows(db) if r["name"] == "GET /forever"]
            if found and found[0]["status"] != "running":
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert "cancelled" == found[0]["status"]

    def test_an_app_exception_is_recorded_and_reraised(self, db: str) -> None:
        def broken(environ: Any, start_response: Any) -> list[bytes]:
            msg = "wsgi app broke"
            raise RuntimeError(msg)

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "QUERY_STRING": ""}
        with pytest.raises(RuntimeError, match="wsgi app broke"):
            WSGIMiddleware(broken)(environ, lambda *a: None)
        row = one(db, "GET /x")  # no framework: the path
        assert ("error", "RuntimeError") == (row["status"], row["error_type"])
        assert execlog.current_execution() is None


def test_the_example_runs(tmp_path: Path) -> None:
    """``examples/web_app.py``: both apps' requests nest under the client's execution."""
    stdout = run_example("web_app.py", tmp_path)
    tree = stdout.splitlines()[2:]
    assert tree[0].startswith("client")
    assert "GET /orders/{order_id} (http)" in tree[1]
    assert "GET /orders/<int:order_id> (http)" in tree[3]
    assert 2 == sum("load_order" in line for line in tree)
