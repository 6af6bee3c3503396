"""A short stress run of the C path: threads, asyncio with cancellation, fork, configure().

Traced calls, nested calls, blocks and coroutines from several threads at once, an event loop
cancelling half of its tasks, a thread reconfiguring execlog all the while, and the main
thread forking children that record on their own; the collector runs often (a low threshold),
so collections happen inside the C path's allocations. Nothing may crash, raise or be left
current, and every process's records must reach the database. It runs in a subprocess for
``EXECLOG_STRESS_SECONDS`` (2 s here; ``.ci/sanitizers`` runs it longer under ASan).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from execlog import _native

if TYPE_CHECKING:
    from pathlib import Path

if _native.SPEEDUPS is None:
    pytest.skip("execlog._speedups is not built (a pure-Python install)", allow_module_level=True)

_STRESS = """
import asyncio, gc, json, os, sys, threading, time
import execlog
from execlog._context import current

db, seconds = sys.argv[1], float(sys.argv[2])
execlog.configure(db=db, queue_size=20_000)
gc.set_threshold(50, 5, 5)
deadline = time.monotonic() + seconds
errors = []
calls = {}

@execlog.traced_execution
def leaf(i, secret="s3cr3t"):
    return i * 2

@execlog.traced_execution
def work(i, *args, **kwargs):
    with execlog.execution("step", inputs={"i": i}):
        return leaf(i) + len(args) + len(kwargs)

@execlog.traced_execution
async def job(i):
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return leaf(i)

def guarded(name, body):
    def run():
        n = 0
        try:
            while time.monotonic() < deadline:
                body(n)
                n += 1
            if current.get() is not None:
                errors.append(f"{name}: left current {current.get()!r}")
        except BaseException as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
        calls[name] = n
    return run

def calling(n):
    work(n, 1, 2, key=n)

def reconfiguring(n):
    execlog.configure(capture_output=n % 2 == 0, capture_inputs=n % 3 != 0)
    time.sleep(0.002)

def looping(n):
    async def batch():
        tasks = [asyncio.ensure_future(job(i)) for i in range(20)]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
    asyncio.run(batch())

threads = [threading.Thread(target=guarded(f"calls-{k}", calling)) for k in range(2)]
threads.append(threading.Thread(target=guarded("configure", reconfiguring)))
threads.append(threading.Thread(target=guarded("asyncio", looping)))
for thread in threads:
    thread.start()

children = []
while time.monotonic() < deadline:
    time.sleep(0.2)
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(50):
                work(i)
            ok = execlog.flush(timeout=30) and current.get() is None
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    children.append(pid)
    work(-1)

for thread in threads:
    thread.join()
for pid in children:
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        errors.append(f"child {pid}: status {status}")
print(json.dumps({"errors": errors, "calls": calls, "children": children,
                  "flushed": execlog.flush(timeout=60)}))
"""


def test_threads_asyncio_fork_and_configure_together(tmp_path: Path) -> None:
    """Everything at once for a few seconds: no crash, no error, no execution left current,
    and the records of the parent and of each forked child in the database."""
    db = tmp_path / "stress.db"
    seconds = os.environ.get("EXECLOG_STRESS_SECONDS", "2")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_STRESS), str(db), seconds],
        capture_output=True,
        text=True,
        timeout=float(seconds) + 120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert [] == report["errors"]
    assert report["flushed"] is True
    assert all(n > 0 for n in report["calls"].values()), report["calls"]
    conn = sqlite3.connect(db)
    try:
        pids = dict(conn.execute("SELECT pid, COUNT(*) FROM executions GROUP BY pid").fetchall())
    finally:
        conn.close()
    assert all(pids.get(pid, 0) >= 150 for pid in report["children"]), pids  # 50 x 3 each
    assert len(pids) == len(report["children"]) + 1
