"""Helpers shared by the server tests: the quickstart's data, a real ``execlog serve`` process."""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import execlog

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"


def record_quickstart(db: str, runs: int = 2) -> list[str]:
    """Record the quickstart's workflow ``runs`` times into ``db``; return the root ids."""
    execlog.configure(db=db)
    namespace = runpy.run_path(str(QUICKSTART), run_name="quickstart")
    roots = [namespace["nightly_report"](f"2026-11-{21 + i}") for i in range(runs)]
    assert execlog.flush(timeout=10)
    return roots


def run_quickstart(directory: Path, runs: int = 1) -> str:
    """Run ``examples/quickstart.py`` (as a user would) ``runs`` times in ``directory``.

    Returns the path of the ``execlog.db`` it records into.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECLOG_")}
    for _ in range(runs):
        subprocess.run(
            [sys.executable, str(QUICKSTART)],
            cwd=directory,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
    return str(directory / "execlog.db")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(
    url: str, timeout: float = 20.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Wait until ``url`` answers (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            msg = f"the server exited with {proc.returncode}"
            raise RuntimeError(msg)
        try:
            urllib.request.urlopen(url, timeout=1).close()
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
            continue
        return
    msg = f"{url} did not answer within {timeout}s"
    raise RuntimeError(msg)


def start_server(
    db: str, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m execlog serve`` (a real uvicorn process) and wait until it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "execlog", "serve", "--db", db, "--port", str(port), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/stats", proc=proc)
    except RuntimeError:
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(err.decode(errors="replace")) from None
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a server process and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(Exception):
        proc.stderr.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def serving(db: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A running server on a free port for the block; yields its base URL."""
    port = free_port()
    proc = start_server(db, port, *extra, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextlib.contextmanager
def live(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a thread of this process for the block; yields the base URL.

    The same server ``execlog serve`` runs, without a process to start: for tests that build
    the app themselves (a token, a small body limit).
    """
    import threading

    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                msg = "uvicorn did not start"
                raise RuntimeError(msg)
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
