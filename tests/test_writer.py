"""The batching writer: flush, exit, running rows, back-pressure, fork, failures, concurrency.

Every test reads what was recorded back from a real SQLite file. Helpers named ``_raw*`` read
the file with plain ``sqlite3`` and never flush, so they show what is really committed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import count_waits, rows
from conftest import raw as _raw
from execlog._recorder import RECORDER

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from pathlib import Path


@execlog.traced_execution
def double(i: int) -> int:
    return i * 2


@execlog.traced_execution
def fail(i: int) -> int:
    raise ValueError(i)


def _raw_count(db: str, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    return _raw(db, f"SELECT COUNT(*) FROM executions WHERE {where}", params)[0][0]


def _assert_unique_ids(db: str) -> None:
    total, distinct = _raw(db, "SELECT COUNT(*), COUNT(DISTINCT execution_id) FROM executions")[0]
    assert total == distinct


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "execlog-writer"]


def _run_script(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (the environment keeps EXECLOG_STRICT=1)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert 0 == proc.returncode, proc.stderr
    return proc


def _execlog_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "execlog" and r.levelno == logging.WARNING]


class _Lock:
    """Another connection holding ``BEGIN EXCLUSIVE``: the writer cannot commit."""

    def __init__(self, db: str) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, timeout=10)
        self.conn.execute("BEGIN EXCLUSIVE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("COMMIT")
            self.conn.close()
            self.held = False


@pytest.fixture
def lock_db(db: str) -> Any:
    """A factory locking ``db`` (created and migrated first); released at teardown."""
    locks: list[_Lock] = []

    def make() -> _Lock:
        if not os.path.exists(db) or not _raw(
            db, "SELECT name FROM sqlite_master WHERE name = 'executions'"
        ):
            execlog.open_store(db, create=True).close()
        lock = _Lock(db)
        locks.append(lock)
        return lock

    yield make
    for lock in locks:
        lock.release()


def _wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class TestWake:
    """Producers wake the writer when the queue reaches ``batch_size``, once per writer cycle."""

    @staticmethod
    def _step_with_idle_writer() -> Callable[[int], int]:
        """A traced function, ``batch_size=4``, and a writer started and idle for 60 s."""
        execlog.configure(batch_size=4, flush_interval=60.0)

        @execlog.traced_execution
        def step(i: int) -> int:
            return i

        step(-1)
        assert execlog.flush(timeout=5.0)
        return step

    def test_each_batch_wakes_the_writer_without_waiting_for_the_interval(
        self, db: str, implementation: str
    ) -> None:
        """Cycle after cycle, a full batch is written long before ``flush_interval``."""
        step = self._step_with_idle_writer()
        for cycle in range(5):
            for i in range(4):
                step(cycle * 4 + i)
            # No flush(): only the producers' wake-up can get these written within 10 s.
            expected = 1 + 4 * (cycle + 1)
            assert _wait_until(lambda n=expected: _raw_count(db) == n), cycle

    def test_a_busy_writer_is_woken_once_and_never_polled(
        self, db: str, implementation: str
    ) -> None:
        """While the writer is writing, producers past ``batch_size`` call nothing on ``wake``.

        The first one since the writer woke sets it (once); the others read a plain flag,
        instead of calling ``wake.is_set()`` with every record.
        """
        step = self._step_with_idle_writer()
        channel = RECORDER.channel
        writer = RECORDER.writer
        assert writer is not None
        wake = channel.wake
        calls: list[str] = []
        real_set = wake.set

        def counting_set() -> None:
            calls.append("set")
            real_set()

        def counting_is_set() -> bool:
            calls.append("is_set")
            return bool(wake._flag)  # type: ignore[attr-defined]

        wake.set = counting_set  # type: ignore[method-assign]
        wake.is_set = counting_is_set  # type: ignore[method-assign]
        with writer.io_lock:  # the writer blocks in its next write, after it woke
            for i in range(4):
                step(i)
            assert ["set"] == calls
            assert _wait_until(lambda: not channel.queue and not channel.woken)
            for i in range(4, 104):
                step(i)
            assert ["set", "set"] == calls  # one wake for the next cycle, no polling
            assert channel.woken is True
        assert execlog.flush(timeout=5.0)
        assert 105 == _raw_count(db)


class TestFlush:
    def test_flush_commits_everything_recorded_before(self, db: str) -> None:
        """flush() returns True and every execution recorded before it is committed."""
        for i in range(300):
            double(i)
        with execlog.execution("block", inputs={"n": 300}):
            pass

        assert execlog.flush(timeout=5.0) is True
        assert 300 == _raw_count(db, "name = ?", (double.__qualname__,))
        assert 1 == _raw_count(db, "name = 'block'")
        assert [(i,) for i in range(300)] == _raw(
            db,
            "SELECT json_extract(inputs, '$.i') FROM executions WHERE name = ? "
            "ORDER BY json_extract(inputs, '$.i')",
            (double.__qualname__,),
        )

    def test_flush_is_a_barrier_each_time(self, db: str) -> None:
        """Each flush covers what was recorded since the previous one."""
        for batch in range(5):
            for i in range(50):
                double(i)
            assert execlog.flush(timeout=5.0) is True
            assert 50 * (batch + 1) == _raw_count(db)

    def test_flush_with_nothing_recorded_returns_true_quickly(self, db: str) -> None:
        """With nothing recorded (no writer yet, or an idle writer) flush() returns at once."""
        start = time.monotonic()
        assert execlog.flush(timeout=5.0) is True
        assert time.monotonic() - start < 0.5

        double(1)
        assert execlog.flush(timeout=5.0) is True
        start = time.monotonic()
        assert execlog.flush(timeout=5.0) is True
        assert time.monotonic() - start < 1.0

    @pytest.mark.timeout(60)
    def test_flush_honours_its_timeout(self, db: str, lock_db: Any) -> None:
        """With a locked database flush() returns False once its timeout has passed."""
        double(0)
        assert execlog.flush(timeout=5.0)
        lock = lock_db()
        double(1)
        for timeout in (0.0, 0.2, 0.5):
            start = time.monotonic()
            assert execlog.flush(timeout=timeout) is False
            assert time.monotonic() - start < timeout + 0.5
        lock.release()
        assert execlog.flush(timeout=10.0) is True
        assert 2 == _raw_count(db)


_RECORD_N = """
import sys, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def work(i):
    return i * 2

for i in range(int(sys.argv[2])):
    work(i)
"""

_RECORD_AT_EXIT = """
import atexit, sys, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def cleanup():
    return "done"

atexit.register(cleanup)
"""

_NO_THREADS_AT_EXIT = """
import atexit, sys, threading, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def cleanup(n):
    return n

def refuse(self):
    raise RuntimeError("can't create new thread at interpreter shutdown")  # as 3.12+ does

def at_exit():
    threading.Thread.start = refuse
    for n in range(3):
        cleanup(n)

atexit.register(at_exit)
"""

_SYS_EXIT_INSIDE = """
import sys, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def work(i):
    return i * 2

@execlog.traced_execution
def main(n):
    for i in range(n):
        work(i)
    sys.exit(0)

main(int(sys.argv[2]))
"""

_DAEMON_POOL = """
import queue, sys, threading, execlog
execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def work(i):
    return i * 2

tasks = queue.Queue()

def worker():
    while True:
        i = tasks.get()
        work(i)
        tasks.task_done()

for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
for i in range(int(sys.argv[2])):
    tasks.put(i)
tasks.join()
# the daemon workers are still alive, blocked on the queue, when the interpreter exits
"""


class TestAtExit:
    @pytest.mark.timeout(60)
    def test_normal_exit_without_flush_loses_nothing(self, tmp_path: Path) -> None:
        """A process that records and simply ends has every record committed at exit."""
        db = str(tmp_path / "exit.db")
        _run_script(_RECORD_N, db, "2000")
        assert 2000 == _raw_count(db, "name = 'work'")
        assert 0 == _raw_count(db, "status = 'running'")

    @pytest.mark.timeout(60)
    def test_sys_exit_inside_traced_function_loses_nothing(self, tmp_path: Path) -> None:
        """sys.exit(0) raised through a traced function: all children and the function itself."""
        db = str(tmp_path / "exit.db")
        _run_script(_SYS_EXIT_INSIDE, db, "500")
        assert 500 == _raw_count(db, "name = 'work'")
        [(status,)] = _raw(db, "SELECT status FROM executions WHERE name = 'main'")
        assert status not in {"running", "abandoned"}
        [(main_id,)] = _raw(db, "SELECT execution_id FROM executions WHERE name = 'main'")
        assert 500 == _raw_count(db, "parent_execution_id = ?", (main_id,))

    @pytest.mark.timeout(60)
    def test_exit_handlers_of_the_program_still_record(self, tmp_path: Path) -> None:
        """An atexit handler registered after `import execlog` runs before the final flush."""
        db = str(tmp_path / "exit.db")
        _run_script(_RECORD_AT_EXIT, db)
        assert [("cleanup", "success")] == _raw(
            db, "SELECT name, status FROM executions WHERE name = 'cleanup'"
        )

    def test_exit_records_are_written_when_no_thread_can_start(self, tmp_path: Path) -> None:
        """Records made at exit before any writer ran, where no thread can start any more
        (Python 3.12+), are written by the final flush itself, without a warning."""
        db = str(tmp_path / "exit.db")
        proc = _run_script(_NO_THREADS_AT_EXIT, db)
        assert "writer" not in proc.stderr
        assert [(0,), (1,), (2,)] == _raw(
            db, "SELECT json_extract(inputs, '$.n') AS n FROM executions ORDER BY n"
        )

    @pytest.mark.timeout(60)
    def test_daemon_thread_pool_loses_nothing(self, tmp_path: Path) -> None:
        """Records made by daemon worker threads still alive at exit are committed."""
        db = str(tmp_path / "exit.db")
        _run_script(_DAEMON_POOL, db, "1000")
        assert 1000 == _raw_count(db, "name = 'work'")
        assert [(i,) for i in range(1000)] == _raw(
            db, "SELECT json_extract(inputs, '$.i') AS i FROM executions ORDER BY i"
        )


class TestRunningRows:
    def test_live_execution_visible_as_running_after_flush(self, db: str) -> None:
        """flush() writes a live execution as `running`; it is completed in place later."""
        with execlog.execution("long", inputs={"step": 1}) as ex:
            assert execlog.flush(timeout=5.0) is True
            [(status, ended, inputs)] = _raw(
                db,
                "SELECT status, ended_at, inputs FROM executions WHERE execution_id = ?",
                (ex.execution_id,),
            )
            assert ("running", None, '{"step":1}') == (status, ended, inputs)
            double(1)  # a finished child while the parent is still running
            assert execlog.flush(timeout=5.0) is True
            assert (
                "running"
                == _raw(
                    db, "SELECT status FROM executions WHERE execution_id = ?", (ex.execution_id,)
                )[0][0]
            )

        [row] = rows(db, "execution_id = ?", (ex.execution_id,))
        assert "success" == row["status"]
        assert row["ended_at"] is not None
        assert 2 == _raw_count(db)
        _assert_unique_ids(db)

    @pytest.mark.timeout(30)
    def test_live_execution_visible_without_flush(self, db: str) -> None:
        """Within a couple of flush intervals a live execution shows as `running` by itself."""
        execlog.configure(flush_interval=0.05)
        with execlog.execution("long") as ex:
            deadline = time.monotonic() + 2.0
            status = None
            while time.monotonic() < deadline:
                if os.path.exists(db):
                    try:
                        found = _raw(
                            db,
                            "SELECT status FROM executions WHERE execution_id = ?",
                            (ex.execution_id,),
                        )
                    except sqlite3.OperationalError:  # not migrated yet
                        found = []
                    if found:
                        status = found[0][0]
                        break
                time.sleep(0.01)
            assert "running" == status
        assert ["success"] == [
            r["status"] for r in rows(db, "execution_id = ?", (ex.execution_id,))
        ]
        _assert_unique_ids(db)

    @pytest.mark.timeout(30)
    def test_live_execution_visible_without_flush_when_writer_is_running(self, db: str) -> None:
        """Same, with the writer already started by an earlier record."""
        execlog.configure(flush_interval=0.05)
        double(0)
        assert execlog.flush(timeout=5.0)
        with execlog.execution("long") as ex:
            deadline = time.monotonic() + 2.0
            found: list[tuple[Any, ...]] = []
            while time.monotonic() < deadline and not found:
                found = _raw(
                    db, "SELECT status FROM executions WHERE execution_id = ?", (ex.execution_id,)
                )
                time.sleep(0.01)
            assert [("running",)] == found
        assert ["success"] == [
            r["status"] for r in rows(db, "execution_id = ?", (ex.execution_id,))
        ]

    def test_many_flushes_never_duplicate(self, db: str) -> None:
        """Nested live executions flushed repeatedly: exactly one row per execution_id."""
        ids = []
        with execlog.execution("outer") as outer:
            ids.append(outer.execution_id)
            for i in range(20):
                with execlog.execution("inner", inputs={"i": i}) as inner:
                    ids.append(inner.execution_id)
                    assert execlog.flush(timeout=5.0)
                    double(i)
                assert execlog.flush(timeout=5.0)
        found = rows(db)
        assert 1 + 20 + 20 == len(found)
        _assert_unique_ids(db)
        statuses = {r["execution_id"]: r["status"] for r in found}
        assert {"success"} == {statuses[i] for i in ids}


_DIE_WHILE_RUNNING = """
import os, signal, sys, execlog
execlog.configure(db=sys.argv[1])
with execlog.execution("doomed"):
    assert execlog.flush(timeout=10)
    if sys.argv[2] == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)
"""

_RECORD_ONE = """
import sys, execlog
execlog.configure(db=sys.argv[1])
with execlog.execution("newcomer"):
    pass
assert execlog.flush(timeout=10)
"""


class TestAbandoned:
    def _doomed(self, db: str, how: str) -> int:
        with subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_DIE_WHILE_RUNNING), db, how]
        ) as proc:
            proc.wait(timeout=60)  # reaped: the pid no longer exists
        expected_rc = -signal.SIGKILL if how == "sigkill" else 3
        assert expected_rc == proc.returncode
        assert [("running", proc.pid)] == _raw(
            db, "SELECT status, pid FROM executions WHERE name = 'doomed'"
        )
        return proc.pid

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("how", ["sigkill", "os_exit"])
    def test_open_store_marks_dead_process_abandoned(self, db: str, how: str) -> None:
        """open_store() turns a dead process's `running` row into `abandoned`, not ours."""
        with execlog.execution("alive") as alive:
            assert execlog.flush(timeout=5.0)
            self._doomed(db, how)

            with execlog.open_store(db) as store:
                [doomed] = store.list(name="doomed")
                assert "abandoned" == doomed.status
                assert "running" == store.get(alive.execution_id).status
            assert [("running", os.getpid())] == _raw(
                db,
                "SELECT status, pid FROM executions WHERE execution_id = ?",
                (alive.execution_id,),
            )
        assert "success" == rows(db, "name = 'alive'")[0]["status"]
        _assert_unique_ids(db)

    @pytest.mark.timeout(60)
    def test_new_writer_in_another_process_marks_abandoned(self, db: str) -> None:
        """A writer starting in another process marks dead rows, never the live test process's."""
        with execlog.execution("alive") as alive:
            assert execlog.flush(timeout=5.0)
            self._doomed(db, "sigkill")
            _run_script(_RECORD_ONE, db)

            assert [("abandoned",)] == _raw(
                db, "SELECT status FROM executions WHERE name = 'doomed'"
            )
            assert [("success",)] == _raw(
                db, "SELECT status FROM executions WHERE name = 'newcomer'"
            )
            assert [("running",)] == _raw(
                db, "SELECT status FROM executions WHERE execution_id = ?", (alive.execution_id,)
            )
        assert "success" == rows(db, "name = 'alive'")[0]["status"]


class TestOnFull:
    @pytest.mark.timeout(60)
    def test_drop_never_blocks_and_counts_every_loss(self, db: str, lock_db: Any) -> None:
        """on_full='drop' with a stalled database: no blocking, rows + dropped == produced."""
        execlog.configure(queue_size=10, on_full="drop", flush_interval=0.05)
        lock = lock_db()
        space = count_waits()
        produced = 1000
        for i in range(produced):
            double(i)
        assert 0 == space.waits, "a call waited for room with on_full='drop'"

        lock.release()
        assert execlog.flush(timeout=10.0) is True
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        written = _raw_count(db)
        assert dropped > 0
        assert produced == written + dropped

    @pytest.mark.timeout(60)
    def test_memory_held_for_a_stalled_database_stays_within_queue_size(
        self, db: str, lock_db: Any
    ) -> None:
        """While the database cannot be written, at most queue_size records are held."""
        execlog.configure(queue_size=10, on_full="drop", flush_interval=0.05)
        double(-1)
        assert execlog.flush(timeout=5.0)
        lock = lock_db()
        produced = 0
        end = time.monotonic() + 1.5  # spans at least one failed write attempt (busy timeout 1 s)
        while time.monotonic() < end:
            double(produced)
            produced += 1
            time.sleep(0.0005)
        lock.release()
        assert execlog.flush(timeout=10.0) is True
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        held = _raw_count(db) - 1
        assert produced == held + dropped
        assert held <= 10, f"{held} records were held in memory with queue_size=10"

    @pytest.mark.timeout(60)
    def test_block_is_lossless_with_a_free_database(self, db: str) -> None:
        """on_full='block' with a tiny queue: every record arrives, none counted as dropped."""
        execlog.configure(queue_size=10, on_full="block", flush_interval=0.01)
        for i in range(2000):
            double(i)
        assert 2000 == len(rows(db))
        with execlog.open_store(db) as store:
            assert 0 == store.dropped_count()

    @pytest.mark.timeout(60)
    def test_block_gives_up_on_a_locked_database(self, db: str, lock_db: Any) -> None:
        """on_full='block' gives up after flush_interval*50 per record; the loss is counted."""
        execlog.configure(queue_size=10, on_full="block", flush_interval=0.01)
        lock = lock_db()
        produced = 14  # 10 fit in the queue; each of the others waits up to 0.5 s
        durations: list[float] = []

        def produce() -> None:
            for i in range(produced):
                start = time.monotonic()
                double(i)
                durations.append(time.monotonic() - start)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        producer.join(timeout=45)
        assert not producer.is_alive(), "the producer hung on a full queue"
        assert produced == len(durations)
        assert max(durations) < 0.5 + 2.5  # give-up time plus scheduling slack

        lock.release()
        assert execlog.flush(timeout=10.0) is True
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        assert dropped > 0
        assert produced == _raw_count(db) + dropped


def _fork_child(conn: Connection) -> None:
    try:
        inherited = execlog.current_execution()
        for i in range(10):
            double(i)
        ok = execlog.flush(timeout=10.0)
        for i in range(10, 20):
            double(i)  # left for the exit hook
        conn.send(("ok", os.getpid(), inherited and inherited.execution_id, ok))
    except BaseException as exc:
        conn.send(("error", repr(exc), None, False))
    finally:
        conn.close()


def _spawn_child(db: str, conn: Connection) -> None:
    try:
        execlog.configure(db=db)
        for i in range(50):
            double(i)
        ok = execlog.flush(timeout=10.0)
        double(50)  # left for the exit hook
        conn.send(("ok", os.getpid(), ok))
    except BaseException as exc:
        conn.send(("error", repr(exc), False))
    finally:
        conn.close()


class TestFork:
    @pytest.mark.slow
    @pytest.mark.timeout(90)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_fork_child_records_while_parent_writer_is_busy(self, db: str) -> None:
        """A forked child records under the parent's current execution; the parent goes on."""
        execlog.configure(flush_interval=0.01, batch_size=16)
        stop = threading.Event()
        produced = [0]

        @execlog.traced_execution
        def busy(i: int) -> int:
            return i

        def produce() -> None:
            i = 0
            while not stop.is_set():
                busy(i)
                i += 1
            produced[0] = i

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        ctx = multiprocessing.get_context("fork")
        children = []
        try:
            with execlog.execution("fork-parent") as parent:
                for _ in range(3):
                    here, there = ctx.Pipe()
                    child = ctx.Process(target=_fork_child, args=(there,))
                    child.start()
                    there.close()
                    assert here.poll(30), "forked child did not answer (deadlock?)"
                    message = here.recv()
                    child.join(timeout=30)
                    assert not child.is_alive(), "forked child did not exit (deadlock?)"
                    assert 0 == child.exitcode
                    assert "ok" == message[0], message
                    _, pid, inherited, ok = message
                    assert (parent.execution_id, True) == (inherited, ok)
                    children.append(pid)
                    double(-1)  # the parent keeps recording after each fork
        finally:
            stop.set()
            producer.join(timeout=30)
        assert not producer.is_alive()

        assert produced[0] > 0
        assert produced[0] == len(rows(db, "name = ?", (busy.__qualname__,)))
        assert [os.getpid()] == [r["pid"] for r in rows(db, "name = 'fork-parent'")]
        assert 3 == len(rows(db, "name = ? AND pid = ?", (double.__qualname__, os.getpid())))
        for pid in children:
            mine = rows(db, "pid = ?", (pid,))
            assert 20 == len(mine)
            assert {double.__qualname__} == {r["name"] for r in mine}
            assert {parent.execution_id} == {r["parent_execution_id"] for r in mine}
            assert {parent.correlation_id} == {r["correlation_id"] for r in mine}
            assert list(range(20)) == sorted(json.loads(r["inputs"])["i"] for r in mine)
        _assert_unique_ids(db)

    @pytest.mark.timeout(90)
    def test_spawn_child_records_into_the_same_file(self, db: str) -> None:
        """A spawn-context child writes into the same file while the parent records too."""
        for i in range(20):
            double(i)
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        child = ctx.Process(target=_spawn_child, args=(db, there))
        child.start()
        there.close()
        for i in range(20, 200):
            double(i)
        assert here.poll(60), "spawned child did not answer"
        message = here.recv()
        child.join(timeout=30)
        assert not child.is_alive()
        assert 0 == child.exitcode
        assert "ok" == message[0], message
        _, pid, ok = message
        assert ok is True
        assert 51 == len(rows(db, "pid = ?", (pid,)))
        assert 200 == len(rows(db, "pid = ?", (os.getpid(),)))
        _assert_unique_ids(db)


class TestRawFork:
    @pytest.mark.timeout(60)
    def test_os_fork_inside_an_execution_records_it_once(self, db: str) -> None:
        """After os.fork() both processes leave the block; only the parent records it."""
        double(0)
        assert execlog.flush(timeout=5.0)
        pid = -1
        try:
            with execlog.execution("outer") as outer:
                pid = os.fork()
                if pid == 0:
                    double(7)
            if pid == 0:
                os._exit(0 if execlog.flush(timeout=10.0) else 2)
        except BaseException:
            if pid == 0:
                os._exit(3)
            raise
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("forked child did not finish (deadlock?)")
        assert 0 == os.waitstatus_to_exitcode(status)

        found = rows(db, "name = 'outer'")
        assert [(os.getpid(), "success")] == [(r["pid"], r["status"]) for r in found]
        [child] = rows(db, "pid = ?", (pid,))
        assert (double.__qualname__, outer.execution_id, "success") == (
            child["name"],
            child["parent_execution_id"],
            child["status"],
        )
        _assert_unique_ids(db)


class TestDatabaseErrors:
    @pytest.mark.timeout(60)
    def test_uncreatable_path_never_reaches_user_code(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A path under a regular file: calls work, flush() is False, one WARNING, recovery."""
        caplog.set_level(logging.INFO, logger="execlog")
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        db = str(blocker / "runs.db")
        execlog.configure(db=db)

        assert [i * 2 for i in range(100)] == [double(i) for i in range(100)]
        with pytest.raises(ValueError, match="7"):
            fail(7)
        with execlog.execution("block") as ex:
            ex.set_output({"ok": True})
        assert execlog.flush(timeout=1) is False
        assert [i * 2 for i in range(100)] == [double(i) for i in range(100)]
        assert execlog.flush(timeout=1) is False
        assert 1 == len(_execlog_warnings(caplog)), [r.getMessage() for r in caplog.records]

        blocker.unlink()
        blocker.mkdir()  # now the path can be created: the held records are written
        assert execlog.flush(timeout=10) is True
        assert 202 == _raw_count(db)
        assert 1 == _raw_count(db, "status = 'error'")
        assert 1 == len(_execlog_warnings(caplog))

    @pytest.mark.timeout(60)
    def test_locked_database_never_reaches_user_code(
        self, db: str, lock_db: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A locked database: calls work, flush() is False, one WARNING; then it recovers."""
        execlog.configure(flush_interval=0.05)
        double(-1)
        assert execlog.flush(timeout=5)
        caplog.set_level(logging.INFO, logger="execlog")
        lock = lock_db()

        assert [i * 2 for i in range(200)] == [double(i) for i in range(200)]
        with pytest.raises(ValueError, match="3"):
            fail(3)
        assert execlog.flush(timeout=1) is False
        assert [i * 2 for i in range(200)] == [double(i) for i in range(200)]
        assert execlog.flush(timeout=3) is False  # several failed attempts by now
        assert 1 == len(_execlog_warnings(caplog)), [r.getMessage() for r in caplog.records]

        lock.release()
        assert execlog.flush(timeout=10) is True
        assert 1 + 200 + 1 + 200 == _raw_count(db)
        _assert_unique_ids(db)
        assert 1 == len(_execlog_warnings(caplog))


class TestConcurrency:
    @pytest.mark.slow
    @pytest.mark.timeout(120)
    def test_threads_and_tasks_exact_rows(self, db: str) -> None:
        """8 threads x 2,000 calls and 2,000 asyncio tasks: exact, unique, parents present."""

        @execlog.traced_execution
        def leaf(t: int, j: int) -> int:
            return j

        @execlog.traced_execution
        def thread_root(t: int) -> None:
            for j in range(1999):
                leaf(t, j)

        errors: list[BaseException] = []

        def run(t: int) -> None:
            try:
                thread_root(t)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()

        @execlog.traced_execution
        async def task(k: int) -> int:
            await asyncio.sleep(0)
            return leaf(-1, k)

        async def main() -> str:
            async with execlog.execution("async-root") as root:
                await asyncio.gather(*(task(k) for k in range(2000)))
            return root.execution_id

        async_root = asyncio.run(main())
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert [] == errors

        found = rows(db)
        assert 8 * 2000 + 1 + 2000 * 2 == len(found)
        ids = {r["execution_id"] for r in found}
        assert len(found) == len(ids)
        assert set() == {r["parent_execution_id"] for r in found} - ids - {None}
        by_id = {r["execution_id"]: r for r in found}
        roots = [r for r in found if r["name"] == thread_root.__qualname__]
        assert 8 == len(roots)
        for root in roots:
            children = [r for r in found if r["parent_execution_id"] == root["execution_id"]]
            assert 1999 == len(children)
            assert {root["thread_id"]} == {c["thread_id"] for c in children}
        tasks = [r for r in found if r["name"] == task.__qualname__]
        assert 2000 == len(tasks)
        assert {async_root} == {r["parent_execution_id"] for r in tasks}
        async_leaves = [
            r for r in found if r["name"] == leaf.__qualname__ and '"t":-1' in r["inputs"]
        ]
        assert 2000 == len(async_leaves)
        assert {task.__qualname__} == {
            by_id[r["parent_execution_id"]]["name"] for r in async_leaves
        }
        assert {"success"} == {r["status"] for r in found}


class TestShutdown:
    def test_shutdown_is_idempotent_and_restarts_lazily(self, db: str) -> None:
        """shutdown() twice is safe, stops the writer thread, and recording restarts it."""
        double(1)
        assert 1 == len(_writer_threads())
        execlog.shutdown()
        execlog.shutdown()
        assert [] == _writer_threads()
        assert 1 == _raw_count(db)  # shutdown flushed

        assert 4 == double(2)
        assert 1 == len(_writer_threads())
        assert execlog.flush(timeout=5)
        assert 2 == _raw_count(db)
        execlog.shutdown()
        assert [] == _writer_threads()

    def test_shutdown_without_writer_is_a_no_op(self, db: str) -> None:
        """shutdown() before anything was recorded does nothing and raises nothing."""
        execlog.shutdown()
        execlog.shutdown()
        assert [] == _writer_threads()
        assert not os.path.exists(db)

    def test_writer_is_garbage_collected_after_shutdown(self, db: str) -> None:
        """Nothing keeps the stopped writer alive (no strong references from hooks)."""
        double(1)
        assert RECORDER.writer is not None
        ref = weakref.ref(RECORDER.writer)
        execlog.shutdown()
        gc.collect()
        assert ref() is None
