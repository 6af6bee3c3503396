"""Reliability (issue 5): load, processes, faults, exit, damaged files and schema upgrades.

Each test reads what was recorded straight from the SQLite file with plain ``sqlite3`` (never
through a flush of its own) and checks the whole promise: exact counts, intact lineage, nothing
lost that was not counted, one report per problem, and a user program that never notices.
Processes talk to the test through a ``Pipe`` or their stdout and wait on each other through
messages and ``flush()``, never through sleeps. Everything that could hang has a timeout.
"""

# The house style writes `expected == actual` (STYLE.md, Tests); ruff's SIM300 wants the reverse.

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import count_waits, raw, wait_or_kill
from execlog import _writer
from execlog._storage.migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.connection import Connection

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# -- helpers --------------------------------------------------------------------------------


def _raw(db: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a query on the file with plain sqlite3, without flushing execlog first."""
    assert os.path.exists(db), f"no database file at {db}"
    return raw(db, sql, params, timeout=30)


def _count(db: str | Path, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    return int(_raw(db, f"SELECT COUNT(*) FROM executions WHERE {where}", params)[0][0])


def _integrity(db: str | Path) -> list[tuple[Any, ...]]:
    return _raw(db, "PRAGMA integrity_check")


def _execlog_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "execlog" and r.levelno >= logging.WARNING
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(path: Path) -> tuple[str, list[str]]:
    """The file's digest and its directory's listing (nothing left behind either)."""
    return _sha256(path), sorted(os.listdir(path.parent))


class _Lines:
    """A child process's stdout, read line by line with a timeout (a reader thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def next_json(self, timeout: float = 60) -> dict[str, Any]:
        """The next line that is a JSON object (other output is skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, "the child process ended early"
            if line.startswith("{"):
                return dict(json.loads(line))


def _dedent(script: str) -> str:
    return textwrap.dedent(script).lstrip()


# -- load -----------------------------------------------------------------------------------

THREADS = 8
ROOTS_PER_THREAD = 250
MIDS = 8
LEAVES = 11
TASKS = 2_000
TREE = 1 + MIDS + MIDS * LEAVES  # 97 executions per thread root
LOAD_TOTAL = THREADS * ROOTS_PER_THREAD * TREE + TASKS * 3
assert 200_000 == LOAD_TOTAL


@execlog.traced_execution
def load_leaf(t: int, r: int, m: int, k: int) -> int:
    return k


@execlog.traced_execution
def load_mid(t: int, r: int, m: int) -> None:
    for k in range(LEAVES):
        load_leaf(t, r, m, k)


@execlog.traced_execution
def load_root(t: int, r: int) -> None:
    for m in range(MIDS):
        load_mid(t, r, m)


@execlog.traced_execution
async def load_task(k: int) -> int:
    async with execlog.execution("load-step", inputs={"k": k}):
        await asyncio.sleep(0)
        return load_leaf(-1, 0, 0, k)


class TestLoad:
    @pytest.mark.slow
    @pytest.mark.timeout(170)
    def test_200k_executions_from_threads_and_tasks_all_arrive_intact(self, db: str) -> None:
        """8 threads and 2,000 asyncio tasks record 200,000 executions: exact, rooted, unique."""
        errors: list[BaseException] = []

        def run(t: int) -> None:
            try:
                for r in range(ROOTS_PER_THREAD):
                    load_root(t, r)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()

        async def main() -> list[int]:
            return await asyncio.gather(*(load_task(k) for k in range(TASKS)))

        assert list(range(TASKS)) == asyncio.run(main())
        for thread in threads:
            thread.join(timeout=150)
        assert not any(t.is_alive() for t in threads)
        assert [] == errors
        assert execlog.flush(timeout=60) is True

        assert [(LOAD_TOTAL, LOAD_TOTAL)] == _raw(
            db, "SELECT COUNT(*), COUNT(DISTINCT execution_id) FROM executions"
        )
        # every parent is in the table, and in the same correlation as its child
        assert 0 == _count(
            db,
            "parent_execution_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executions AS p "
            "WHERE p.execution_id = executions.parent_execution_id "
            "AND p.correlation_id = executions.correlation_id)",
        )
        # every correlation has exactly one root, whose id is the correlation id
        roots = THREADS * ROOTS_PER_THREAD + TASKS
        assert [(roots, roots)] == _raw(
            db,
            "SELECT COUNT(*), COUNT(DISTINCT correlation_id) FROM executions "
            "WHERE parent_execution_id IS NULL AND correlation_id = execution_id",
        )
        assert [(roots,)] == _raw(db, "SELECT COUNT(DISTINCT correlation_id) FROM executions")
        # and each tree has exactly the shape that was called
        assert [(3, TASKS), (TREE, THREADS * ROOTS_PER_THREAD)] == _raw(
            db,
            "SELECT size, COUNT(*) FROM (SELECT COUNT(*) AS size FROM executions "
            "GROUP BY correlation_id) GROUP BY size ORDER BY size",
        )
        leaves = THREADS * ROOTS_PER_THREAD * MIDS * LEAVES + TASKS
        assert [(leaves, leaves)] == _raw(
            db,
            "SELECT COUNT(*), COUNT(DISTINCT inputs) FROM executions WHERE name = ?",
            (load_leaf.__qualname__,),
        )
        assert [("success", LOAD_TOTAL)] == _raw(
            db, "SELECT status, COUNT(*) FROM executions GROUP BY status"
        )
        with execlog.open_store(db) as store:
            assert 0 == store.dropped_count()


# -- processes ------------------------------------------------------------------------------

PER_WRITER = 20_000
TAIL = 100  # recorded after the last flush: committed by the exit hook


@execlog.traced_execution
def proc_work(w: int, i: int) -> int:
    return i


class _Collect(logging.Handler):
    """Keeps the messages of the ``execlog`` logger (WARNING and above)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _capture_child_output(stderr_path: str) -> _Collect:
    """In a child: stderr (Python and C level) and execlog's log go to ``stderr_path``."""
    stream = open(stderr_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the child
    os.dup2(stream.fileno(), 2)
    sys.stderr = stream
    log = logging.getLogger("execlog")
    log.addHandler(logging.StreamHandler(stream))
    collect = _Collect()
    log.addHandler(collect)
    return collect


def _writer_process(db: str, w: int, stderr_path: str, conn: Connection) -> None:
    collect = _capture_child_output(stderr_path)
    try:
        execlog.configure(db=db, batch_size=32, flush_interval=0.01)
        conn.send(("ready", os.getpid()))
        conn.recv()
        oks = []
        for i in range(PER_WRITER):
            proc_work(w, i)
            if i % 1000 == 999:
                oks.append(execlog.flush(timeout=30))
        oks.append(execlog.flush(timeout=30))
        for i in range(PER_WRITER, PER_WRITER + TAIL):
            proc_work(w, i)
        conn.send(("done", os.getpid(), oks, collect.messages))
    except BaseException as exc:
        conn.send(("error", os.getpid(), repr(exc), collect.messages))
    finally:
        conn.close()


def _reader_process(db: str, stderr_path: str, conn: Connection) -> None:
    collect = _capture_child_output(stderr_path)
    reads = 0
    errors: list[str] = []
    finished: list[int] = []
    try:
        conn.send(("ready", os.getpid()))
        conn.recv()
        while not conn.poll():
            try:
                # create=True: the reader may start before any writer has made the file
                with execlog.open_store(db, create=True) as store:
                    recent = store.recent(20)
                    store.list(name=proc_work.__qualname__, status="success", limit=50)
                    stats = store.stats()
                    if recent:
                        store.correlation_chain(recent[0].correlation_id)
                        store.lineage(recent[0].execution_id)
                finished.append(sum(s.count for s in stats))
                reads += 1
            except Exception as exc:
                errors.append(repr(exc))
        conn.recv()
        conn.send(("done", reads, errors, collect.messages, finished))
    except BaseException as exc:
        conn.send(("error", reads, [*errors, repr(exc)], collect.messages, finished))
    finally:
        conn.close()


class TestProcesses:
    @pytest.mark.slow
    @pytest.mark.timeout(170)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    @pytest.mark.parametrize("method", ["fork", "spawn"])
    def test_four_writers_and_a_reader_share_one_file(self, tmp_path: Path, method: str) -> None:
        """4 processes record into one file while a 5th queries: nothing lost, nothing locked."""
        db = str(tmp_path / "shared.db")
        ctx = multiprocessing.get_context(method)
        started: list[tuple[Any, Connection, Path]] = []
        for w in range(4):
            here, there = ctx.Pipe()
            err = tmp_path / f"writer-{w}.stderr"
            proc = ctx.Process(target=_writer_process, args=(db, w, str(err), there))
            proc.start()
            there.close()
            started.append((proc, here, err))
        here, there = ctx.Pipe()
        reader_err = tmp_path / "reader.stderr"
        reader = ctx.Process(target=_reader_process, args=(db, str(reader_err), there))
        reader.start()
        there.close()
        everyone = [*started, (reader, here, reader_err)]
        try:
            for _, conn, _ in everyone:
                assert conn.poll(60), "a child did not start"
                assert "ready" == conn.recv()[0]
            for _, conn, _ in everyone:
                conn.send("go")
            results = []
            for _, conn, _ in started:
                assert conn.poll(120), "a writer did not finish"
                results.append(conn.recv())
            here.send("stop")
            assert here.poll(60), "the reader did not stop"
            reader_result = here.recv()
        finally:
            for proc, _, _ in everyone:
                proc.join(timeout=60)
                if proc.is_alive():  # pragma: no cover - a hang
                    proc.kill()
                    proc.join()
        assert [0] * 5 == [proc.exitcode for proc, _, _ in everyone]

        pids = []
        for message in results:
            assert "done" == message[0], message
            _, pid, oks, warnings = message
            assert [] == warnings
            assert [True] * (PER_WRITER // 1000 + 1) == oks
            pids.append(pid)
        kind, reads, errors, warnings, finished = reader_result
        assert ("done", [], []) == (kind, errors, warnings)
        assert reads > 0
        assert finished == sorted(finished), "a reader saw the history shrink"
        for _, _, err in everyone:
            assert "" == err.read_text(), err.name  # no warning, traceback or "locked"
        self._check_every_row(db, pids)

    @staticmethod
    def _check_every_row(db: str, pids: list[int]) -> None:
        expected = PER_WRITER + TAIL
        assert [(4 * expected, 4 * expected)] == _raw(
            db, "SELECT COUNT(*), COUNT(DISTINCT execution_id) FROM executions"
        )
        for w, pid in enumerate(pids):
            assert [(expected, 0, expected - 1)] == _raw(
                db,
                "SELECT COUNT(DISTINCT json_extract(inputs, '$.i')), "
                "MIN(json_extract(inputs, '$.i')), MAX(json_extract(inputs, '$.i')) "
                "FROM executions WHERE pid = ? AND json_extract(inputs, '$.w') = ?",
                (pid, w),
            )
        with execlog.open_store(db) as store:
            assert 0 == store.dropped_count()
        assert [("ok",)] == _integrity(db)


# -- on_full="drop" and memory ----------------------------------------------------------------


@execlog.traced_execution
def fast(i: int) -> int:
    return i


class TestDropUnderASlowDisk:
    @pytest.mark.slow
    @pytest.mark.timeout(120)
    def test_drop_never_blocks_and_every_record_is_written_or_counted(self, db: str) -> None:
        """A producer far faster than a database locked 90% of the time: never waits for room
        in the queue (whatever the machine's speed), and every record is written or counted."""
        execlog.configure(queue_size=500, on_full="drop", batch_size=8, flush_interval=0.01)
        execlog.open_store(db, create=True).close()
        space = count_waits()  # where a producer would wait for room (on_full="block")
        stop = threading.Event()
        cycles = [0]

        def lock_intermittently() -> None:
            conn = sqlite3.connect(db, isolation_level=None, timeout=30)
            try:
                while not stop.is_set():
                    conn.execute("BEGIN EXCLUSIVE")
                    stop.wait(0.3)  # shorter than busy_timeout: slow, not failing
                    conn.execute("COMMIT")
                    cycles[0] += 1
                    stop.wait(0.02)
            finally:
                conn.close()

        locker = threading.Thread(target=lock_intermittently, daemon=True)
        locker.start()
        produced = 100_000
        try:
            for i in range(produced):
                fast(i)
        finally:
            stop.set()
            locker.join(timeout=30)
        assert not locker.is_alive()
        assert cycles[0] >= 1

        assert execlog.flush(timeout=30) is True
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        # each call's final record is written or counted, exactly once (a call that was in
        # flight at a flush may also have a `running` row: see the next test)
        written = _count(db, "status <> 'running'")
        assert produced == written + dropped
        assert dropped > 0
        assert written > 0
        assert 0 == space.waits, "a call waited for room with on_full='drop'"
        assert [(written,)] == _raw(
            db,
            "SELECT COUNT(DISTINCT json_extract(inputs, '$.i')) FROM executions "
            "WHERE status <> 'running'",
        )

    @pytest.mark.timeout(60)
    def test_a_dropped_end_never_leaves_an_execution_running(self, db: str) -> None:
        """An execution already shown as `running` whose end is dropped (queue full) must not
        stay `running` for ever; and it is counted once, not as a row and a drop."""
        execlog.configure(queue_size=10, on_full="drop", flush_interval=0.05)
        execlog.open_store(db, create=True).close()
        lock = sqlite3.connect(db, isolation_level=None, timeout=10)
        try:
            with execlog.execution("long") as long:
                assert execlog.flush(timeout=5)  # now stored as `running`
                lock.execute("BEGIN EXCLUSIVE")
                assert list(range(20)) == [fast(i) for i in range(20)]  # fills the queue
            assert execlog.flush(timeout=0.5) is False  # `long` ended: its end was dropped
        finally:
            if lock.in_transaction:
                lock.execute("COMMIT")
            lock.close()
        assert execlog.flush(timeout=10) is True
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
            stored = store.get(long.execution_id)
        assert stored is None or "running" != stored.status, "finished, yet `running` for ever"
        assert 21 == _count(db, "status <> 'running'") + dropped


_MEMORY = """
import json, resource, sys, time
import execlog
from execlog._recorder import RECORDER
from execlog._storage.sqlite import SQLiteBackend

write = SQLiteBackend.write

def slow_write(self, rows, running, dropped):  # a disk that takes 20 ms per transaction
    time.sleep(0.02)
    return write(self, rows, running, dropped)

SQLiteBackend.write = slow_write
db, calls, queue_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
execlog.configure(db=db, queue_size=queue_size, on_full="drop", batch_size=256)

@execlog.traced_execution
def work(i, payload):
    return i

def rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

start = time.monotonic()
longest = 0
warm_kb = 0
for i in range(calls):
    work(i, "p" * 64)
    if i % 1000 == 0:
        longest = max(longest, len(RECORDER.channel.queue))
        if i == 100_000:
            warm_kb = rss_kb()
seconds = time.monotonic() - start
ok = execlog.flush(timeout=60)
print(json.dumps({"warm_kb": warm_kb, "peak_kb": rss_kb(), "longest": longest,
                  "seconds": seconds, "flushed": ok}))
"""


class TestMemory:
    @pytest.mark.slow
    @pytest.mark.timeout(170)
    def test_a_million_calls_on_a_slow_disk_stay_within_the_queue_bound(
        self, tmp_path: Path, record_property: Any
    ) -> None:
        """1,000,000 calls, disk at 20 ms a batch: queue at its bound, RSS flat, all accounted."""
        db = str(tmp_path / "memory.db")
        calls, queue_size = 1_000_000, 10_000
        proc = subprocess.run(
            [sys.executable, "-c", _dedent(_MEMORY), db, str(calls), str(queue_size)],
            capture_output=True,
            text=True,
            timeout=160,
            check=False,
        )
        assert 0 == proc.returncode, proc.stderr
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        for key, value in figures.items():
            record_property(key, value)
        assert figures["flushed"] is True
        assert queue_size * 0.9 <= figures["longest"] <= queue_size
        # The bound is reached after ~10,000 calls: from call 100,000 on, memory must not grow.
        grown_mb = (figures["peak_kb"] - figures["warm_kb"]) / 1024
        assert grown_mb < 16, f"RSS grew {grown_mb:.1f} MB after the queue was full: {figures}"

        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        assert calls == _count(db) + dropped
        assert dropped > 0


# -- SIGKILL ---------------------------------------------------------------------------------

_KILL_ME = """
import json, sys, threading, execlog
execlog.configure(db=sys.argv[1], batch_size=32, flush_interval=0.01, queue_size=2000)

@execlog.traced_execution
def step(t, i):
    return i

counts = [0, 0, 0]

def loop(t):
    with execlog.execution(f"worker-{t}"):
        i = 0
        while True:
            step(t, i)
            i += 1
            counts[t] = i

for t in range(3):
    threading.Thread(target=loop, args=(t,), daemon=True).start()
with execlog.execution("long-run"):
    while True:
        done = list(counts)   # finished before the flush below starts
        if execlog.flush(timeout=10):
            print(json.dumps({"durable": done}), flush=True)
"""


def _run_and_kill(db: str, checkpoints: int = 5) -> tuple[int, list[int]]:
    """Start a recording process, SIGKILL it after some flushes; its pid and what was durable."""
    with subprocess.Popen(
        [sys.executable, "-c", _dedent(_KILL_ME), db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        lines = _Lines(proc)
        durable: list[int] = []
        try:
            for _ in range(checkpoints):
                durable = lines.next_json(timeout=60)["durable"]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
    assert -signal.SIGKILL == proc.returncode
    assert sum(durable) > 0
    return proc.pid, durable


def _check_killed_run(db: str, pid: int, durable: list[int], status: str) -> None:
    for t, n in enumerate(durable):
        assert n == _count(
            db,
            "pid = ? AND name = 'step' AND json_extract(inputs, '$.t') = ? "
            "AND json_extract(inputs, '$.i') < ?",
            (pid, t, n),
        ), f"thread {t}: records flushed before the kill are missing"
    in_flight = ["long-run", "worker-0", "worker-1", "worker-2"]
    assert [(name, status, None) for name in in_flight] == _raw(
        db,
        "SELECT name, status, ended_at FROM executions WHERE pid = ? AND name <> 'step' "
        "ORDER BY name",
        (pid,),
    )
    assert 0 == _count(db, "pid = ? AND status NOT IN ('success', ?)", (pid, status))
    assert 0 == _count(db, "pid = ? AND status = ? AND ended_at IS NOT NULL", (pid, status))


class TestSigkill:
    @pytest.mark.slow
    @pytest.mark.timeout(150)
    @pytest.mark.parametrize("opener", ["open_store", "cli"])
    def test_killed_mid_run_keeps_flushed_records_and_is_marked_abandoned(
        self, tmp_path: Path, opener: str
    ) -> None:
        """SIGKILL while writing: file intact, flushed rows there, in-flight `running`, then
        `abandoned` once the next process (a writer, then ``opener``) opens the database."""
        db = str(tmp_path / "killed.db")
        first_pid, first_durable = _run_and_kill(db)
        assert [("ok",)] == _integrity(db)
        _check_killed_run(db, first_pid, first_durable, "running")
        before = _raw(db, "SELECT execution_id FROM executions ORDER BY execution_id")

        # the next recording process marks the first one's rows abandoned when it starts writing
        second_pid, second_durable = _run_and_kill(db)
        assert [("ok",)] == _integrity(db)
        _check_killed_run(db, first_pid, first_durable, "abandoned")
        _check_killed_run(db, second_pid, second_durable, "running")
        assert set(before) <= set(_raw(db, "SELECT execution_id FROM executions"))

        if opener == "open_store":
            with execlog.open_store(db) as store:
                assert len(store.list(status="abandoned", limit=1000)) >= 8
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "execlog", "list", "--db", db, "--json", "--limit", "5"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert 0 == proc.returncode, proc.stderr
            assert 5 == len(json.loads(proc.stdout))
        _check_killed_run(db, second_pid, second_durable, "abandoned")
        assert 0 == _count(db, "status = 'running'")
        assert [("ok",)] == _integrity(db)


# -- faults: locked, read-only, disk full, deleted -------------------------------------------

_FAULT_CHILD = """
import datetime, json, logging, os, re, resource, signal, sqlite3, sys, threading, time
import traceback
import execlog, execlog.store
from execlog._storage import sqlite as _sqlite_backend

db, fault = sys.argv[1], sys.argv[2]
if fault == "readonly" and os.geteuid() == 0:
    os.setgid(65534)  # root ignores file modes: record as nobody (everything is imported)
    os.setuid(65534)
if fault == "disk-full":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append([record.levelname, record.getMessage()])


collect = Collect()
logging.getLogger("execlog").addHandler(collect)
logging.getLogger("execlog").setLevel(logging.INFO)
execlog.configure(db=db, flush_interval=0.05, batch_size=64, queue_size=1_000_000)


@execlog.traced_execution
def work(t, i):
    return i * 2


state = {"produced": 0, "wrong": 0, "slowest": 0.0}
lock = threading.Lock()


def record(seconds=None, calls=None, threads=2):
    def run(t):
        i = 0
        end = time.monotonic() + (seconds or 0)
        while (calls is None and time.monotonic() < end) or (calls is not None and i < calls):
            start = time.perf_counter()
            result = work(t, i)
            took = time.perf_counter() - start
            with lock:
                state["produced"] += 1
                state["wrong"] += result != i * 2
                state["slowest"] = max(state["slowest"], took)
            i += 1
            if i % 10 == 0:
                time.sleep(0.001)  # a program that also does other work
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def report(phase, **data):
    log, collect.records = collect.records, []
    print(json.dumps({"phase": phase, "log": log, **state, **data}), flush=True)


def wait_for_test():
    assert "go" == sys.stdin.readline().strip()


def fill_the_disk():  # no byte more can be written to any file (EFBIG, like ENOSPC)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def free_the_disk():
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


restarts = [64]


def reconnect():
    # a new writer (new connection): an open file descriptor would go on writing regardless
    restarts[0] += 1
    execlog.configure(batch_size=restarts[0])


record(seconds=0.3)
report("healthy", flushed=execlog.flush(timeout=10))

wait_for_test()
if fault == "disk-full":
    fill_the_disk()
if fault == "readonly":
    reconnect()
record(seconds=1.5)
report("faulted", flushed=execlog.flush(timeout=1))

wait_for_test()
if fault == "disk-full":
    free_the_disk()
# A write attempt already under way when the fault was removed may still fail the first flush
# (a failed attempt fails every pending flush); the one after it must succeed.
first = execlog.flush(timeout=30)
report("recovered", first=first, flushed=first or execlog.flush(timeout=30))

wait_for_test()
if fault == "disk-full":
    fill_the_disk()
if fault == "readonly":
    reconnect()
record(calls=25)
execlog.shutdown(timeout=30)  # the database is still failing: what is left must be counted
report("gave-up")
"""


class _Fault:
    """Applies and removes one fault from the test process."""

    def __init__(self, kind: str, folder: Path, db: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.db = db
        self.lock: sqlite3.Connection | None = None

    def apply(self) -> None:
        if self.kind == "lock":
            self.lock = sqlite3.connect(self.db, isolation_level=None, timeout=30)
            self.lock.execute("BEGIN EXCLUSIVE")  # held far longer than busy_timeout
        elif self.kind == "readonly":
            for path in self._files():
                path.chmod(0o444)
            self.folder.chmod(0o555)

    def remove(self) -> None:
        if self.lock is not None:
            self.lock.execute("COMMIT")
            self.lock.close()
            self.lock = None
        elif self.kind == "readonly":
            self.folder.chmod(0o700)
            for path in self._files():
                path.chmod(0o600)

    def _files(self) -> list[Path]:
        return [p for p in self.folder.iterdir() if p.name.startswith(self.db.name)]


def _run_through_a_fault(fault: _Fault) -> list[dict[str, Any]]:
    """Run _FAULT_CHILD, applying and removing ``fault`` between its phases; the 4 reports."""
    with subprocess.Popen(
        [sys.executable, "-c", _dedent(_FAULT_CHILD), str(fault.db), fault.kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=fault.folder,
    ) as proc:
        lines = _Lines(proc)
        reports = []
        stderr = ""
        try:
            reports.append(lines.next_json())
            for action in (fault.apply, fault.remove, fault.apply):
                action()
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                reports.append(lines.next_json())
        finally:
            fault.remove()
            try:
                _, stderr = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:  # pragma: no cover - a hang
                    proc.kill()
    assert 0 == proc.returncode, stderr
    assert "Traceback" not in stderr
    return reports


@pytest.fixture
def fault_folder() -> Iterator[Path]:
    """A folder the recording child can use even when it runs as ``nobody``."""
    folder = Path(tempfile.mkdtemp(prefix="execlog-fault-"))
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)
    yield folder
    folder.chmod(0o700)
    shutil.rmtree(folder, ignore_errors=True)


class TestFaults:
    @pytest.mark.slow
    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("kind", ["lock", "readonly", "disk-full"])
    def test_fault_is_reported_once_survived_and_accounted_for(
        self, fault_folder: Path, kind: str
    ) -> None:
        """Locked past busy_timeout / read-only / disk full: the program runs on, execlog warns
        once, writes everything once the fault is gone, and counts what it had to give up."""
        db = fault_folder / "runs.db"
        healthy, faulted, recovered, gave_up = _run_through_a_fault(_Fault(kind, fault_folder, db))

        assert healthy["flushed"] is True
        assert faulted["flushed"] is False
        assert 0 == gave_up["wrong"]
        assert gave_up["slowest"] < 0.5, f"a user call waited {gave_up['slowest']:.2f}s"
        warnings = [m for level, m in faulted["log"] + recovered["log"] if level == "WARNING"]
        if kind == "lock":  # a lock of 2.5 s may be tolerated as contention, or reported once
            assert len(warnings) <= 1, warnings
        else:
            assert 1 == len(warnings), warnings
        assert recovered["flushed"] is True

        written = _count(db, "name = 'work'")
        assert written >= recovered["produced"], "records flushed after recovery are missing"
        lost = gave_up["produced"] - written
        assert 0 <= lost <= 50
        messages = [m for level, m in gave_up["log"] if level == "WARNING"]
        if lost:
            assert any(re.search(rf"\b{lost}\b", m) for m in messages), (lost, messages)
        assert [("ok",)] == _integrity(db)
        assert [(written,)] == _raw(db, "SELECT COUNT(DISTINCT execution_id) FROM executions")

    @pytest.mark.timeout(60)
    def test_retries_back_off_while_the_program_keeps_recording(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A database that cannot be opened is retried with backoff (0.1 s doubling), not in a
        tight loop each time the program records another batch."""
        caplog.set_level(logging.WARNING, logger="execlog")
        attempts: list[float] = []
        open_backend = _writer.open_backend

        def counting_open(db: str, *args: Any, **kwargs: Any) -> Any:
            attempts.append(time.monotonic())
            return open_backend(db, *args, **kwargs)

        monkeypatch.setattr(_writer, "open_backend", counting_open)
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a directory should be")
        execlog.configure(db=str(blocker / "runs.db"), batch_size=64, flush_interval=0.05)
        end = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < end:
            assert i == fast(i)
            i += 1
            if i % 10 == 0:
                time.sleep(0.001)  # a program doing other work between calls
        # 0.1 + 0.2 + 0.4 + 0.8 s: about five attempts fit in two seconds
        assert len(attempts) <= 10, f"{len(attempts)} attempts to open the database in 2 s"
        assert 1 == len(_execlog_warnings(caplog))

    @pytest.mark.timeout(60)
    def test_file_deleted_while_open_is_reported_once_and_recording_goes_on(
        self, db: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The database deleted under a running writer: the program runs on, one WARNING, and
        what is recorded afterwards reaches a database at the configured path (or is counted)."""
        caplog.set_level(logging.INFO, logger="execlog")
        execlog.configure(flush_interval=0.05)
        assert list(range(100)) == [fast(i) for i in range(100)]
        assert execlog.flush(timeout=10) is True
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)

        assert list(range(100, 300)) == [fast(i) for i in range(100, 300)]
        execlog.flush(timeout=10)
        assert list(range(300, 400)) == [fast(i) for i in range(300, 400)]
        assert execlog.flush(timeout=10) is True, "recording never recovered"

        assert os.path.exists(db), "records flushed after the deletion went to a vanished file"
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        after = _count(db, "json_extract(inputs, '$.i') >= 100")
        assert 300 == after + dropped
        assert 1 == len(_execlog_warnings(caplog)), _execlog_warnings(caplog)


# -- fork in the middle of a transaction --------------------------------------------------------


@execlog.traced_execution
def in_child(i: int) -> int:
    return i


class TestForkStorm:
    @pytest.mark.slow
    @pytest.mark.timeout(120)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_forking_while_the_writer_commits_never_deadlocks(self, db: str) -> None:
        """30 forks while a thread records non-stop (a commit every few ms): both sides go on."""
        execlog.configure(batch_size=8, flush_interval=0.005)
        stop = threading.Event()
        produced = [0]

        def produce() -> None:
            i = 0
            while not stop.is_set():
                fast(i)
                i += 1
            produced[0] = i

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        children = []
        try:
            for k in range(30):
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    code = 3
                    try:
                        for i in range(5):
                            in_child(i)
                        code = 0 if execlog.flush(timeout=20) else 2
                    finally:
                        os._exit(code)
                children.append(pid)
                assert k == in_child(k)  # the parent records between forks
                time.sleep(0.003)  # spread the forks over the writer's cycle
            codes = [wait_or_kill(pid, timeout=30) for pid in children]
        finally:
            stop.set()
            producer.join(timeout=30)
        assert not producer.is_alive()
        assert [0] * 30 == codes

        assert execlog.flush(timeout=30) is True
        assert produced[0] > 0
        assert produced[0] == _count(db, "name = ?", (fast.__qualname__,))
        assert 30 == _count(db, "name = ? AND pid = ?", (in_child.__qualname__, os.getpid()))
        for pid in children:
            assert [(5, 5)] == _raw(
                db,
                "SELECT COUNT(*), COUNT(DISTINCT json_extract(inputs, '$.i')) FROM executions "
                "WHERE pid = ?",
                (pid,),
            )
        [(total, distinct)] = _raw(
            db, "SELECT COUNT(*), COUNT(DISTINCT execution_id) FROM executions"
        )
        assert total == distinct


# -- interpreter exit -------------------------------------------------------------------------

_EXIT_WHILE_RECORDING = """
import asyncio, json, sys, threading, time, execlog
# flush_interval 0.05: `block` gives up after 2.5 s; four threads hogging the GIL can stall a
# WAL checkpoint for longer than the 0.5 s that 0.01 would allow, a loss the contract permits.
execlog.configure(db=sys.argv[1], flush_interval=0.05, batch_size=64)

@execlog.traced_execution
def beat(t, i):
    return i

counts = [0, 0, 0, 0]

def loop(t):
    i = 0
    while True:  # a daemon thread still recording when the interpreter exits
        beat(t, i)
        i += 1
        counts[t] = i

for t in range(4):
    threading.Thread(target=loop, args=(t,), daemon=True).start()
while min(counts) < 2000:
    time.sleep(0.01)

@execlog.traced_execution
def fatal():
    sys.exit(3)

@execlog.traced_execution
def main():
    print(json.dumps({"recorded": list(counts)}), flush=True)
    fatal()

@execlog.traced_execution
async def amain():
    await asyncio.sleep(0)
    main()

if sys.argv[2] == "async":
    asyncio.run(amain())
else:
    main()
"""


class TestInterpreterExit:
    @pytest.mark.slow
    @pytest.mark.timeout(90)
    @pytest.mark.parametrize("how", ["sync", "async"])
    def test_sys_exit_with_daemon_threads_recording_flushes_and_exits_promptly(
        self, tmp_path: Path, how: str
    ) -> None:
        """sys.exit(3) deep in traced calls while 4 daemon threads record non-stop: every call
        finished before the exit is stored, the exit stack is recorded, and exit is prompt."""
        db = str(tmp_path / "exit.db")
        with subprocess.Popen(
            [sys.executable, "-c", _dedent(_EXIT_WHILE_RECORDING), db, how],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            lines = _Lines(proc)
            recorded = lines.next_json()["recorded"]
            exiting = time.monotonic()
            try:
                _, stderr = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:  # pragma: no cover - a hang
                    proc.kill()
            took = time.monotonic() - exiting
        assert 3 == proc.returncode

        for t, n in enumerate(recorded):
            [(count, distinct, low, high)] = _raw(
                db,
                "SELECT COUNT(*), COUNT(DISTINCT json_extract(inputs, '$.i')), "
                "MIN(json_extract(inputs, '$.i')), MAX(json_extract(inputs, '$.i')) "
                "FROM executions WHERE name = 'beat' AND json_extract(inputs, '$.t') = ?",
                (t,),
            )
            assert count >= n, f"thread {t}: {n - count} records made before exit are missing"
            assert (count, 0, count - 1) == (distinct, low, high), f"thread {t}: a gap"
        names = ["fatal", "main", "amain"] if how == "async" else ["fatal", "main"]
        assert [(name, "error", "SystemExit", "3") for name in names] == _raw(
            db,
            "SELECT name, status, error_type, error_message FROM executions "
            "WHERE name <> 'beat' ORDER BY started_at DESC",
        )
        # a daemon thread's call in flight at the very end may stay `running` (its process
        # is gone: the next open marks it abandoned); nothing else may
        assert {"beat"} >= {
            r[0] for r in _raw(db, "SELECT name FROM executions WHERE status = 'running'")
        }
        assert 4 >= _count(db, "status = 'running'")
        assert "" == stderr
        assert took < 5.0, f"the interpreter needed {took:.1f}s to exit"


# -- damaged files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real, checkpointed execlog database holding 3,000 executions."""
    path = tmp_path_factory.mktemp("good") / "good.db"
    script = """
import sys, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def work(i, pad):
    return i

for i in range(3000):
    work(i, "x" * 100)
"""
    subprocess.run([sys.executable, "-c", _dedent(script), str(path)], check=True, timeout=60)
    data = path.read_bytes()
    assert len(data) > 100_000
    return data


def _damaged(data: bytes, how: str) -> bytes:
    if how.startswith("truncated-"):
        size = how.removeprefix("truncated-")
        return data[: len(data) // 2 if size == "half" else int(size)]
    damaged = bytearray(data)
    if how == "garbled-pages":  # the middle of every page after the first
        for offset in range(4096, len(damaged), 4096):
            damaged[offset + 100 : offset + 200] = bytes(range(100))
    elif how == "garbled-schema-page":
        damaged[200:4096] = b"\xa5" * (4096 - 200)
    elif how == "bad-page-count":
        damaged[28:32] = (10**6).to_bytes(4, "big")
    return bytes(damaged)


DAMAGE = [
    "truncated-10",
    "truncated-100",
    "truncated-512",
    "truncated-4096",
    "truncated-8192",
    "truncated-half",
    "garbled-pages",
    "garbled-schema-page",
    "bad-page-count",
]


class TestDamagedFiles:
    @pytest.mark.parametrize("how", DAMAGE)
    def test_store_on_a_damaged_file_raises_store_error_and_changes_nothing(
        self, tmp_path: Path, good_db: bytes, how: str
    ) -> None:
        """A truncated or corrupted execlog file: StoreError (at open or on reading), never a
        raw sqlite3 error, and the file is left byte-for-byte as it was."""
        path = tmp_path / "damaged.db"
        path.write_bytes(_damaged(good_db, how))
        before = _snapshot(path)
        # any of the reads may be the one that meets the damage
        with pytest.raises(execlog.StoreError), execlog.open_store(path) as store:  # noqa: PT012
            store.recent(5)
            assert 3000 == len(store.list(limit=5000))
            store.stats()
        assert before == _snapshot(path)

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("how", ["truncated-4096", "truncated-half", "garbled-pages"])
    def test_writer_on_a_damaged_file_never_breaks_and_changes_nothing(
        self, tmp_path: Path, good_db: bytes, how: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Recording into a damaged file: user code runs, one WARNING, the file is untouched."""
        caplog.set_level(logging.WARNING, logger="execlog")
        path = tmp_path / "damaged.db"
        path.write_bytes(_damaged(good_db, how))
        before = _snapshot(path)
        execlog.configure(db=str(path))
        assert list(range(50)) == [fast(i) for i in range(50)]
        assert execlog.flush(timeout=2) is False
        assert 1 == len(_execlog_warnings(caplog)), _execlog_warnings(caplog)
        execlog.shutdown()
        assert before == _snapshot(path)


# -- upgrading databases of released schema versions -------------------------------------------

RELEASED_FIXTURES = sorted(FIXTURES.glob("execlog-v*.db"))


def _version_of(path: Path) -> int:
    return int(path.stem.removeprefix("execlog-v"))


def _everything(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "executions": _raw(db, "SELECT * FROM executions ORDER BY rowid"),
        "dropped_records": _raw(db, "SELECT * FROM dropped_records ORDER BY rowid"),
    }


class TestUpgradeFromReleasedSchemas:
    def test_there_is_a_fixture_for_every_released_version(self) -> None:
        """tests/fixtures holds execlog-v1.db at least, each made by make_fixtures.py."""
        assert 1 in [_version_of(p) for p in RELEASED_FIXTURES]
        assert (FIXTURES / "make_fixtures.py").exists()

    @pytest.mark.parametrize("fixture", RELEASED_FIXTURES, ids=lambda p: p.stem)
    def test_fixture_has_exactly_the_schema_of_its_version(
        self, tmp_path: Path, fixture: Path
    ) -> None:
        """The fixture's tables and indexes are what migrations 1..N create (it is genuine)."""
        version = _version_of(fixture)
        fresh = tmp_path / "fresh.db"
        conn = sqlite3.connect(fresh)
        try:
            for migration in MIGRATIONS[:version]:
                conn.executescript(migration.sql)
        finally:
            conn.close()
        query = (
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name <> 'schema_migrations' AND name NOT LIKE 'sqlite_autoindex%' "
            "ORDER BY name"
        )
        copy = tmp_path / fixture.name
        shutil.copyfile(fixture, copy)
        assert _raw(fresh, query) == _raw(copy, query)
        assert [(v,) for v in range(1, version + 1)] == _raw(
            copy, "SELECT version FROM schema_migrations ORDER BY version"
        )

    @pytest.mark.parametrize("fixture", RELEASED_FIXTURES, ids=lambda p: p.stem)
    @pytest.mark.parametrize("opener", ["store", "writer"])
    def test_upgrade_keeps_every_row(self, tmp_path: Path, fixture: Path, opener: str) -> None:
        """Opening an old database (store or writer) migrates it to LATEST, every row intact."""
        digest = _sha256(fixture)
        copy = tmp_path / fixture.name
        shutil.copyfile(fixture, copy)
        before = _everything(copy)
        migrations_before = _raw(copy, "SELECT * FROM schema_migrations ORDER BY version")
        assert before["executions"]
        assert before["dropped_records"]

        if opener == "store":
            execlog.open_store(copy, create=True).close()
        else:
            execlog.configure(db=str(copy))
            assert 7 == fast(7)
            assert execlog.flush(timeout=10) is True
            execlog.shutdown()

        after = _everything(copy)
        if opener == "writer":
            assert [(fast.__qualname__,)] == _raw(
                copy,
                "SELECT name FROM executions WHERE rowid > ?",
                (len(before["executions"]),),
            )
            after["executions"] = after["executions"][: len(before["executions"])]
        assert before == after
        migrations_after = _raw(copy, "SELECT * FROM schema_migrations ORDER BY version")
        assert migrations_before == migrations_after[: len(migrations_before)]
        assert [m.version for m in MIGRATIONS] == [row[0] for row in migrations_after]
        assert LATEST == migrations_after[-1][0]
        assert [("ok",)] == _integrity(copy)

        with execlog.open_store(copy) as store:
            assert sum(row[3] for row in before["dropped_records"]) == store.dropped_count()
            for row in before["executions"]:
                got = store.get(row[0])
                assert got is not None
                assert (row[1], row[2], row[3], row[13]) == (
                    got.name,
                    got.kind,
                    got.status,
                    got.correlation_id,
                )
                assert (None if row[7] is None else json.loads(row[7])) == got.inputs
                assert (None if row[8] is None else json.loads(row[8])) == got.output
                assert (json.loads(row[16]) if row[16] else {}) == got.tags
        assert digest == _sha256(fixture), "the committed fixture itself was modified"


# -- running rows of other hosts ------------------------------------------------------------


def _insert_running(db: str, execution_id: str, host: str, age_s: float) -> None:
    """A `running` row of a process on ``host`` that started ``age_s`` seconds ago."""
    from execlog._storage import COLUMNS

    started = int((time.time() - age_s) * 1_000_000)
    values = {
        "execution_id": execution_id,
        "name": "remote",
        "kind": "function",
        "status": "running",
        "started_at": started,
        "correlation_id": execution_id,
        "trigger_kind": "manual",
        "pid": 4242,
        "thread_id": 1,
        "host": host,
    }
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            f"INSERT INTO executions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})",
            [values.get(c) for c in COLUMNS],
        )
    conn.close()


def _status_of(db: str, execution_id: str) -> str:
    conn = sqlite3.connect(db)
    try:
        [(status,)] = conn.execute(
            "SELECT status FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchall()
    finally:
        conn.close()
    return str(status)


class TestOtherHosts:
    def _prepare(self, db: str) -> None:
        execlog.open_store(db, create=True).close()  # create the schema
        _insert_running(db, "old-elsewhere", "other-host", age_s=2 * 86_400)
        _insert_running(db, "new-elsewhere", "other-host", age_s=120)

    def test_other_hosts_are_left_alone_by_default(self, db: str) -> None:
        """Without EXECLOG_ABANDON_AFTER, another host's running rows are never rewritten."""
        self._prepare(db)
        execlog.open_store(db, create=True).close()
        assert "running" == _status_of(db, "old-elsewhere")
        assert "running" == _status_of(db, "new-elsewhere")

    def test_a_day_horizon(self, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a one-day horizon, an older running row of another host becomes abandoned."""
        self._prepare(db)
        monkeypatch.setenv("EXECLOG_ABANDON_AFTER", "86400")
        execlog.open_store(db, create=True).close()
        assert "abandoned" == _status_of(db, "old-elsewhere")
        assert "running" == _status_of(db, "new-elsewhere")

    def test_horizon_is_configurable(self, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """EXECLOG_ABANDON_AFTER sets the horizon in seconds; 0 turns it off."""
        self._prepare(db)
        monkeypatch.setenv("EXECLOG_ABANDON_AFTER", "0")
        execlog.open_store(db, create=True).close()
        assert "running" == _status_of(db, "old-elsewhere")
        monkeypatch.setenv("EXECLOG_ABANDON_AFTER", "60")
        execlog.open_store(db, create=True).close()
        assert "abandoned" == _status_of(db, "old-elsewhere")
        assert "abandoned" == _status_of(db, "new-elsewhere")

    def test_bad_horizon_is_reported_and_the_default_used(
        self, db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unreadable EXECLOG_ABANDON_AFTER is named in one warning; the default applies."""
        self._prepare(db)
        monkeypatch.setenv("EXECLOG_ABANDON_AFTER", "soon")
        with caplog.at_level(logging.WARNING, logger="execlog"):
            execlog.open_store(db, create=True).close()
        assert any("EXECLOG_ABANDON_AFTER" in r.getMessage() for r in caplog.records)
        assert "running" == _status_of(db, "old-elsewhere")

    @pytest.mark.parametrize("horizon", ["1e300", "9223372036854775807"])
    def test_a_horizon_beyond_recorded_time_abandons_nothing_and_breaks_nothing(
        self, db: str, monkeypatch: pytest.MonkeyPatch, horizon: str
    ) -> None:
        """A huge EXECLOG_ABANDON_AFTER means never: stores open and the writer writes."""
        self._prepare(db)
        monkeypatch.setenv("EXECLOG_ABANDON_AFTER", horizon)
        execlog.open_store(db).close()
        with execlog.execution("still-recorded"):
            pass
        assert execlog.flush(timeout=10)
        assert "running" == _status_of(db, "old-elsewhere")
        with execlog.open_store(db) as store:
            assert ["still-recorded"] == [e.name for e in store.list(name="still-recorded")]

    def test_a_late_end_replaces_abandoned(self, db: str) -> None:
        """Should the execution still end, its final row gives the real status."""
        with execlog.execution("slow-elsewhere") as ex:
            execlog.flush()
            conn = sqlite3.connect(db)
            with conn:
                conn.execute(
                    "UPDATE executions SET status = 'abandoned' WHERE execution_id = ?",
                    (ex.execution_id,),
                )
            conn.close()
        execlog.flush()
        assert "success" == _status_of(db, ex.execution_id)
