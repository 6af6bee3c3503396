"""Recording to a collector: configure(db="http://..."), open_store("http://..."), the CLI."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

import execlog
from execlog.cli import main as cli
from execlog.server import create_app
from server_support import free_port, live, start_server, stop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A collector with a token on a thread: (base URL, database path)."""
    db = str(tmp_path / "collected.db")
    store = execlog.open_store(db, create=True)
    with live(create_app(store, token="t0ken")) as url:
        yield url, db
    store.close()


@execlog.traced_execution
def double(x: int) -> int:
    return 2 * x


class TestRecording:
    def test_records_arrive_and_read_back(
        self, collector: tuple[str, str], implementation: str
    ) -> None:
        """Executions recorded with db=URL are stored by the collector; the store reads them."""
        url, _ = collector
        execlog.configure(db=url, token="t0ken")

        @execlog.traced_execution(name="add")
        def add(a: int, b: int) -> int:
            return a + b

        with execlog.execution("job", inputs={"n": 2}) as job:
            add(1, 2)
            with pytest.raises(ZeroDivisionError), execlog.execution("boom"):
                _ = 1 / 0
        assert execlog.flush(timeout=10)
        with execlog.open_store(url, token="t0ken") as store:
            found = store.correlation_chain(job.correlation_id)
            assert ["job", "add", "boom"] == [e.name for e in found]
            assert ({"a": 1, "b": 2}, 3) == (found[1].inputs, found[1].output)
            assert ("error", "ZeroDivisionError") == (found[2].status, found[2].error_type)
            assert [e.execution_id for e in found[1:]] == [
                e.execution_id for e in store.children(job.execution_id)
            ]
            assert job.execution_id == store.root(job.correlation_id).execution_id  # type: ignore[union-attr]
            assert ["add", "boom"] == [e.name for e in store.lineage(job.execution_id).descendants]
            assert {"add", "boom", "job"} == {s.name for s in store.stats()}
            assert 3 == len(store.list(since=found[0].started_at))

    def test_events_arrive_with_their_executions(
        self, collector: tuple[str, str], implementation: str
    ) -> None:
        """Events and log records recorded with db=URL are stored by the collector, in order,
        redacted, and read back through the API as through the collector's own database."""
        url, db = collector
        execlog.configure(db=url, token="t0ken")
        with execlog.execution("load") as job:
            execlog.event("rows loaded", rows=120, password="hunter2")
            execlog.event("slow source", level="warning")
            double(2)
        assert execlog.flush(timeout=10)
        expected = [
            ("info", "rows loaded", {"rows": 120, "password": "[REDACTED]"}),
            ("warning", "slow source", {}),
        ]
        for where, token in ((url, "t0ken"), (db, None)):
            with execlog.open_store(where, token=token) as store:
                found = store.events(job.execution_id)
                assert expected == [(e.level, e.message, e.attributes) for e in found], where
                assert found[0].at <= found[1].at
                assert [] == store.events(store.children(job.execution_id)[0].execution_id)

    def test_running_then_finished(self, collector: tuple[str, str]) -> None:
        """flush() shows a live execution as running there; its end completes it in place."""
        url, db = collector
        execlog.configure(db=url, token="t0ken")
        with execlog.execution("slow") as slow:
            assert execlog.flush(timeout=10)
            with execlog.open_store(url) as store:
                assert "running" == store.get(slow.execution_id).status  # type: ignore[union-attr]
        assert execlog.flush(timeout=10)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert [("success",)] == conn.execute("SELECT status FROM executions").fetchall()

    def test_batches_over_the_body_limit_are_split(self, collector: tuple[str, str]) -> None:
        """A batch whose records add up to more than the collector's 10 MB arrives whole."""
        url, db = collector
        execlog.configure(db=url, token="t0ken", max_payload_bytes=1_000_000)
        for i in range(25):
            with execlog.execution("big", inputs={"i": i, "blob": "x" * 600_000}):
                pass
        assert execlog.flush(timeout=30)
        assert 25 == stored(db)

    def test_cli_reads_a_server(
        self, collector: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`execlog list --db http://...` lists what the collector holds."""
        url, _ = collector
        execlog.configure(db=url, token="t0ken")
        double(21)
        assert execlog.flush(timeout=10)
        assert 0 == cli(["list", "--db", url, "--json"])
        listed = json.loads(capsys.readouterr().out)
        assert ["double"] == [e["name"] for e in listed]

    def test_id_prefixes_resolve_through_the_server(
        self, collector: tuple[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A unique prefix names an execution or a correlation remotely; an ambiguous one lists."""
        url, _ = collector
        execlog.configure(db=url, token="t0ken")
        with execlog.execution("first") as first:
            pass
        with execlog.execution("second") as second:
            pass
        assert execlog.flush(timeout=10)
        with execlog.open_store(url) as remote:
            assert first.execution_id == remote.resolve_id(first.execution_id[:20])
            assert second.correlation_id == remote.resolve_correlation_id(
                second.correlation_id[:20]
            )
            common = ""
            for a, b in zip(first.execution_id, second.execution_id):
                if a != b:
                    break
                common += a
            if len(common) >= execlog.Store.MIN_PREFIX:
                with pytest.raises(execlog.AmbiguousIdError) as caught:
                    remote.resolve_id(common)
                assert {first.execution_id, second.execution_id} <= set(caught.value.candidates)
            with pytest.raises(KeyError):
                remote.resolve_id("ffffffff-ffff")
        assert 0 == cli(["show", first.execution_id[:20], "--db", url, "--json"])
        assert first.execution_id == json.loads(capsys.readouterr().out)["execution_id"]

    def test_wrong_token_is_reported_not_raised(
        self, collector: tuple[str, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A refused token: flush() is False, the program goes on, the problem is logged."""
        url, _ = collector
        execlog.configure(db=url, token="wrong")
        with caplog.at_level(logging.WARNING, logger="execlog"):
            assert 42 == double(21)
            assert not execlog.flush(timeout=2)
        assert any("401" in r.getMessage() for r in caplog.records)


class TestUnreachable:
    def test_waits_in_the_queue_then_arrives(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Collector down: calls go on, flush() is False, logged once; up again: all arrive."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        execlog.configure(db=url)
        with caplog.at_level(logging.WARNING, logger="execlog"):
            assert [2, 4, 6] == [double(i) for i in (1, 2, 3)]
            assert not execlog.flush(timeout=0.5)
            assert not execlog.flush(timeout=0.5)
        problems = [r for r in caplog.records if "cannot" in r.getMessage()]
        assert 1 == len(problems)
        assert url in problems[0].getMessage()
        db = str(tmp_path / "late.db")
        store = execlog.open_store(db, create=True)
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
        )
        import threading

        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            assert execlog.flush(timeout=20)
            assert 3 == len(store.list(name="double"))
        finally:
            server.should_exit = True
            thread.join(10)
            store.close()

    def test_bounded_queue_never_blocks_with_drop(self) -> None:
        """With on_full='drop', a full queue drops (and counts) instead of blocking."""
        execlog.configure(db=f"http://127.0.0.1:{free_port()}", queue_size=5, on_full="drop")
        started = time.monotonic()
        for i in range(50):
            double(i)
        assert time.monotonic() - started < 30  # generous: it must simply not hang
        assert not execlog.flush(timeout=0.2)


RECORDER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    import execlog

    url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    execlog.configure(db=url, token="t0ken", flush_interval=0.05, batch_size=20)

    @execlog.traced_execution
    def step(i):
        time.sleep(0.005)
        return i

    @execlog.traced_execution
    async def astep(i):
        await asyncio.sleep(0.002)
        return i

    def worker(w):
        for i in range(count):
            with execlog.execution(f"{tag}-thread", inputs={"w": w, "i": i}):
                step(i)

    async def tasks():
        async def one(i):
            with execlog.execution(f"{tag}-task", inputs={"i": i}):
                await astep(i)
        for start in range(0, count, 10):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 10, count))))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join()
    # flush() is False while the collector is down: wait until it has acknowledged everything
    deadline = time.monotonic() + 90
    while not execlog.flush(timeout=5):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.1)
    """
)


def stored(db: str) -> int:
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_collector_killed_and_restarted_loses_nothing(tmp_path: Path) -> None:
    """Two recording processes (threads and asyncio); the collector is SIGKILLed mid-run and
    restarted: every execution arrives exactly once, finished."""
    db = str(tmp_path / "collector.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    script = tmp_path / "record.py"
    script.write_text(RECORDER_SCRIPT)
    count = 300
    server = start_server(db, port, "--token", "t0ken")
    recorders = [
        subprocess.Popen([sys.executable, str(script), url, tag, str(count)]) for tag in "ab"
    ]
    try:
        deadline = time.monotonic() + 60
        while stored(db) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop(server, signal.SIGKILL)
        assert 100 <= stored(db) < 2 * (3 * count * 2)  # killed mid-run
        time.sleep(1.0)
        server = start_server(db, port, "--token", "t0ken")
        codes = [r.wait(timeout=120) for r in recorders]
        assert [0, 0] == codes
    finally:
        for r in recorders:
            if r.poll() is None:
                r.kill()
        stop(server)
    conn = sqlite3.connect(db)
    by_name = dict(conn.execute("SELECT name, COUNT(*) FROM executions GROUP BY name"))
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM executions GROUP BY status"))
    conn.close()
    per_tag = 2 * count * 2 + count * 2  # thread blocks + steps (2 threads), tasks + asteps
    assert {
        "a-thread": 2 * count,
        "a-task": count,
        "step": 2 * 2 * count,
        "astep": 2 * count,
        "b-thread": 2 * count,
        "b-task": count,
    } == by_name
    assert {"success": 2 * per_tag} == statuses
