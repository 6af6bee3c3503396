"""A Starlette app and a Flask app, each request recorded as a root execution.

    pip install starlette uvicorn flask httpx
    python examples/web_app.py          # serves both on loopback, calls them, prints the trees

The ASGI app runs under uvicorn, the WSGI app under the standard library's server; a traced
function called by a handler nests under the request's execution.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import uvicorn
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import execlog
from execlog.asgi import ExecutionMiddleware as ASGIMiddleware
from execlog.cli import main as execlog_cli
from execlog.wsgi import ExecutionMiddleware as WSGIMiddleware

if TYPE_CHECKING:
    from starlette.requests import Request


@execlog.traced_execution(kind="db")
def load_order(order_id: int) -> dict[str, object]:
    return {"id": order_id, "total": 42.5}


async def order(request: Request) -> JSONResponse:
    return JSONResponse(load_order(int(request.path_params["order_id"])))


asgi_app = ASGIMiddleware(Starlette(routes=[Route("/orders/{order_id:int}", order)]))

flask_app = Flask("orders")


@flask_app.get("/orders/<int:order_id>")
def flask_order(order_id: int) -> dict[str, object]:
    return load_order(order_id)


flask_app.wsgi_app = WSGIMiddleware(flask_app.wsgi_app)  # type: ignore[method-assign]


def main() -> None:
    config = uvicorn.Config(asgi_app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    asgi_port = server.servers[0].sockets[0].getsockname()[1]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    wsgi = make_server("127.0.0.1", 0, flask_app, handler_class=Quiet)
    threading.Thread(target=wsgi.serve_forever, daemon=True).start()

    with execlog.execution("client", kind="script") as client:
        headers = execlog.inject({}, style="http")  # the requests continue this lineage
        for port in (asgi_port, wsgi.server_port):
            answer = httpx.get(f"http://127.0.0.1:{port}/orders/7", headers=headers)
            print(answer.status_code, answer.json(), answer.headers["Execlog-Execution-Id"])
    server.should_exit = True
    wsgi.shutdown()
    time.sleep(0.2)  # the WSGI server closes the last response just after the client read it
    execlog.flush()
    execlog_cli(["tree", client.execution_id])


if __name__ == "__main__":
    main()
