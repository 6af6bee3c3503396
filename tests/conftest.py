"""Shared fixtures: strict internal errors, a fresh recorder per test, a temporary database."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

os.environ["EXECLOG_STRICT"] = "1"  # internal errors fail our tests instead of being logged
os.environ.pop("EXECLOG_DISABLED", None)
os.environ.pop("EXECLOG_PARENT_ID", None)
os.environ.pop("EXECLOG_CORRELATION_ID", None)
os.environ.pop("EXECLOG_SAMPLED", None)
os.environ.pop("EXECLOG_SAMPLE_RATE", None)

import execlog
from execlog import _fastpath, _native
from execlog._context import current
from execlog._recorder import RECORDER
from pgcluster import Cluster, is_postgres, run_sql, start_cluster

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


#: The ``Execution`` fields, in the order API.md section 3 lists them (the contract, written out
#: here rather than imported from the package it checks).
FIELDS = [
    "execution_id",
    "name",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "inputs",
    "output",
    "error_type",
    "error_message",
    "error_stack",
    "parent_execution_id",
    "correlation_id",
    "trigger_kind",
    "run_id",
    "tags",
    "pid",
    "thread_id",
    "host",
]


@pytest.fixture(autouse=True)
def _reset_recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts with default settings, no writer and no open execution."""
    monkeypatch.delenv("EXECLOG_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    RECORDER.reset()
    yield
    open_execution = current.get()
    RECORDER.reset()
    assert open_execution is None, f"test left an execution open: {open_execution!r}"


@pytest.fixture(params=["native", "python"])
def implementation(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Run a test on the C fast path and again on the pure-Python reference path.

    The path is chosen when a function is decorated, so this covers what a test decorates
    itself. ``native`` skips where ``execlog._speedups`` is not built (CI builds it).
    """
    with use_implementation(str(request.param), monkeypatch):
        yield str(request.param)


@pytest.fixture(params=["native", "native-public", "python"])
def sampling_implementation(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """``implementation``, and the C path marking unsampled roots by the public calls."""
    with use_implementation(str(request.param), monkeypatch):
        yield str(request.param)


@contextlib.contextmanager
def use_implementation(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ``implementation`` fixture's body: ``native``, ``python``, or ``native-public``.

    ``native-public`` is the C path with an unsampled root marking its context by the public
    ``PyContextVar_Set``/``Reset``, the way it does where it cannot swap the context's mapping
    (another CPython version).
    """
    if name != "python" and not _fastpath.READY:
        pytest.skip("execlog._speedups is not built here (a pure-Python install)")
    if name == "python":
        monkeypatch.setattr(_fastpath, "READY", False)
        _fastpath.native_blocks(on=False)
    speedups: Any = _native.SPEEDUPS
    swapping = speedups is not None and speedups.swap_context_vars()
    if name == "native-public":
        speedups.swap_context_vars(False)
    try:
        yield
    finally:
        _fastpath.native_blocks(on=True)
        if speedups is not None:
            speedups.swap_context_vars(swapping)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh database path, configured as execlog's target."""
    path = str(tmp_path / "runs.db")
    execlog.configure(db=path)
    return path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL server for the whole run (see tests/pgcluster.py)."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of an empty schema of its own on the test server (dropped afterwards)."""
    schema = pg_cluster.new_schema()
    try:
        yield pg_cluster.url(schema)
    finally:
        RECORDER.reset()  # the writer's connection goes before its schema does
        pg_cluster.drop_schema(schema)


#: The backends the store tests run on: one suite, two databases.
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def scratch(any_db: str, tmp_path: Path) -> Callable[[], str]:
    """An empty, migrated database of ``any_db``'s backend for each example of a property test."""
    counter = itertools.count()

    def new() -> str:
        if is_postgres(any_db):
            if next(counter):
                raw(any_db, "DELETE FROM executions")
            else:
                execlog.open_store(any_db, create=True).close()
            return any_db
        db = str(tmp_path / f"s{next(counter)}.db")
        execlog.open_store(db, create=True).close()
        return db

    return new


@pytest.fixture(params=BACKENDS)
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend in turn: a SQLite path or a PostgreSQL URL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "any.db")


def rows(db_path: str, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read execution rows straight from SQLite (not through execlog), oldest first.

    A PostgreSQL URL reads them from there (``?`` placeholders either way).
    """
    assert execlog.flush(timeout=10), "flush failed"
    if is_postgres(db_path):
        import psycopg
        from psycopg.rows import dict_row

        condition = "TRUE" if where == "1" else where.replace("?", "%s")
        with psycopg.connect(db_path, row_factory=dict_row) as conn:
            cur = conn.execute(
                f"SELECT * FROM executions WHERE {condition} ORDER BY started_at, execution_id",
                params,
            )
            return list(cur)
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        cur = conn.execute(
            f"SELECT * FROM executions WHERE {where} ORDER BY started_at, execution_id",
            params,
        )
        return [dict(r) for r in cur]
    finally:
        conn.close()


class CountingCondition(threading.Condition):
    """A Condition that counts the waits on it (see :func:`count_waits`)."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


def count_waits() -> CountingCondition:
    """Count the waits of producers for room in the queue (``on_full="block"``): the channel's
    ``space``, replaced. Whether a call waited, told apart from how long it took (which a slow
    machine, or one under a sanitizer, stretches)."""
    space = CountingCondition()
    RECORDER.channel.space = space
    return space


def recorded(db: str) -> list[dict[str, Any]]:
    """Every stored execution, its name without the test's ``<locals>.`` prefix."""
    assert execlog.flush(timeout=10)
    if not os.path.exists(db) or not raw(
        db, "SELECT 1 FROM sqlite_master WHERE name = 'executions'"
    ):
        return []  # nothing was ever written
    found = rows(db)
    for row in found:
        row["name"] = row["name"].rsplit("<locals>.", 1)[-1]
    return found


def names(db: str) -> list[str]:
    return sorted(r["name"] for r in recorded(db))


def raw(
    db: str | os.PathLike[str], sql: str, params: tuple[Any, ...] = (), *, timeout: float = 10
) -> list[tuple[Any, ...]]:
    """Run a query on the file with plain sqlite3, without flushing execlog first.

    A PostgreSQL URL runs it there instead (``?`` placeholders either way).
    """
    if is_postgres(db):
        return run_sql(str(db), sql, params)
    conn = sqlite3.connect(db, timeout=timeout)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_or_kill(pid: int, timeout: float) -> int:
    """Wait for a forked child; kill it and fail if it does not finish (a deadlock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child {pid} did not finish within {timeout}s (deadlock?)")


def run_example(name: str, cwd: Path) -> str:
    """Run ``examples/NAME`` in ``cwd`` as a user would (no EXECLOG_ settings); its output."""
    example = Path(__file__).resolve().parent.parent / "examples" / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECLOG_")}
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    return done.stdout
