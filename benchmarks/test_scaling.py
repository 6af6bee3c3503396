"""Concurrency and the disabled path, as pytest-benchmark groups (compare.py has the full set).

Run with ``python -m pytest benchmarks/test_scaling.py -q``. Nothing here asserts on timing.

- ``concurrency``: 1, 2 and 4 threads each make ``PER_THREAD`` traced calls of ``f(a, b=2)``
  with execlog's default configuration into a fresh database per round; a round ends when
  ``execlog.flush()`` returns, so it covers recorded *and committed* rows. The per-row time is
  in the per-unit summary at the end of the run; the GIL keeps 4 threads near 1 thread's rate.
- ``disabled-loop``: ``DISABLED_LOOP`` calls per round of a ``configure(enabled=False)``
  decorated function next to a plain ``functools.wraps`` wrapper.
- ``EXECLOG_DISABLED=1`` at decoration returns the function itself (checked in a subprocess,
  since the variable is read when decorating).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from execlog._config import Config

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

PER_THREAD = 2_000  # traced calls per thread per round
ROUNDS = 3
DISABLED_LOOP = 10_000  # calls per round in the disabled group

DEFAULTS = Config()


def f(a, b=2):
    return a + b


@functools.wraps(f)
def wrapped_f(*args, **kwargs):
    return f(*args, **kwargs)


@execlog.traced_execution(name="f")
def traced_f(a, b=2):
    return a + b


def per_unit(benchmark: Any, count: int, unit: str) -> None:
    benchmark.extra_info["divide_by"] = count
    benchmark.extra_info["unit"] = unit


# -- concurrency ---------------------------------------------------------------------------


@pytest.mark.benchmark(group="concurrency")
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_concurrency_rows_committed(benchmark, tmp_path: Path, threads: int) -> None:
    rounds = iter(range(1_000))
    rows = threads * PER_THREAD
    per_unit(benchmark, rows, "row")
    last_db: list[str] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        db = str(tmp_path / f"threads-{threads}-{next(rounds)}.db")  # fresh database per round
        execlog.configure(
            db=db,
            batch_size=DEFAULTS.batch_size,
            flush_interval=DEFAULTS.flush_interval,
            queue_size=DEFAULTS.queue_size,
            on_full=DEFAULTS.on_full,
            enabled=True,
        )
        traced_f(0)  # schema created, writer running
        assert execlog.flush(timeout=30.0)
        last_db[:] = [db]
        return (), {}

    def run() -> bool:
        def work() -> None:
            call = traced_f
            for i in range(PER_THREAD):
                call(i)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return execlog.flush(timeout=120.0)

    assert benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    conn = sqlite3.connect(last_db[0])
    try:
        committed = conn.execute("SELECT COUNT(*) FROM executions WHERE name = 'f'").fetchone()[0]
    finally:
        conn.close()
    assert committed == rows + 1  # the warm-up call and every traced call of the last round


# -- disabled ------------------------------------------------------------------------------


def loop(fn: Callable[..., Any]) -> Callable[[], None]:
    def run() -> None:
        call = fn
        for _ in range(DISABLED_LOOP):
            call(1)

    return run


@pytest.mark.benchmark(group="disabled-loop")
def test_disabled_loop_functools_wraps(benchmark) -> None:
    per_unit(benchmark, DISABLED_LOOP, "call")
    benchmark.pedantic(loop(wrapped_f), rounds=ROUNDS * 2, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="disabled-loop")
def test_disabled_loop_configure_enabled_false(benchmark) -> None:
    per_unit(benchmark, DISABLED_LOOP, "call")
    execlog.configure(enabled=False)
    try:
        benchmark.pedantic(loop(traced_f), rounds=ROUNDS * 2, iterations=1, warmup_rounds=1)
    finally:
        execlog.configure(enabled=True)


CHILD = """
import execlog

def f(a, b=2):
    return a + b

assert execlog.traced_execution(f) is f
assert execlog.traced_execution(name="g")(f) is f
print("undecorated")
"""


def test_env_disabled_returns_function_itself() -> None:
    env = {**os.environ, "EXECLOG_DISABLED": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "undecorated"
