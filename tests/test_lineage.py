"""Tests for lineage: nesting, tasks, threads, explicit parents, carriers, processes and ids.

Everything is read back from a real SQLite file (``rows``) or through ``open_store``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows
from execlog import current_execution, execution, traced_execution

if TYPE_CHECKING:
    from pathlib import Path

# Every test here runs on the C fast path and on the pure-Python path.
pytestmark = pytest.mark.usefixtures("implementation")

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def one(db: str, name: str) -> dict[str, Any]:
    """The only row called ``name``."""
    found = rows(db, "name = ?", (name,))
    assert 1 == len(found), found
    return found[0]


class TestNesting:
    """Automatic nesting through contextvars."""

    def test_three_deep(self, db: str) -> None:
        """Each level's parent is the level above; all share the root's id as correlation."""

        @traced_execution(name="leaf")
        def leaf():
            return 1

        @traced_execution(name="middle")
        def middle():
            return leaf()

        @traced_execution(name="top")
        def top():
            return middle()

        assert 1 == top()

        top_row, middle_row, leaf_row = one(db, "top"), one(db, "middle"), one(db, "leaf")
        root_id = top_row["execution_id"]
        assert top_row["parent_execution_id"] is None
        assert root_id == middle_row["parent_execution_id"]
        assert middle_row["execution_id"] == leaf_row["parent_execution_id"]
        assert [root_id] * 3 == [r["correlation_id"] for r in (top_row, middle_row, leaf_row)]
        assert ["manual", "child", "child"] == [
            r["trigger_kind"] for r in (top_row, middle_row, leaf_row)
        ]

    def test_blocks_and_handles_agree_with_rows(self, db: str) -> None:
        """The handle's ids are what the rows record, for blocks nested in blocks."""
        with execution("a") as a, execution("b") as b, execution("c") as c:
            assert (a.execution_id, a.execution_id) == (b.parent_execution_id, c.correlation_id)

        assert a.execution_id == a.correlation_id
        assert b.execution_id == c.parent_execution_id
        recorded = {r["name"]: r for r in rows(db)}
        for handle in (a, b, c):
            row = recorded[handle.name]
            assert (
                handle.execution_id,
                handle.parent_execution_id,
                handle.correlation_id,
            ) == (row["execution_id"], row["parent_execution_id"], row["correlation_id"])

    def test_sibling_roots_have_their_own_correlation(self, db: str) -> None:
        """Two roots one after the other are not related."""
        with execution("first") as first:
            pass
        with execution("second") as second:
            pass

        assert second.parent_execution_id is None
        assert second.execution_id == one(db, "second")["correlation_id"]
        assert first.execution_id == one(db, "first")["correlation_id"]
        assert first.execution_id != second.execution_id

    def test_gather_children_of_one_parent(self, db: str) -> None:
        """20 concurrent asyncio.gather children all nest under the traced async parent."""

        @traced_execution(name="child")
        async def child(i):
            await asyncio.sleep(0.01)
            return current_execution().parent_execution_id

        @traced_execution(name="parent")
        async def parent():
            me = current_execution().execution_id
            seen = await asyncio.gather(*(child(i) for i in range(20)))
            return me, seen

        me, seen = asyncio.run(parent())

        assert [me] * 20 == seen
        parent_row = one(db, "parent")
        children = rows(db, "name = 'child'")
        assert 20 == len(children)
        assert {me} == {r["parent_execution_id"] for r in children}
        assert {parent_row["correlation_id"]} == {r["correlation_id"] for r in children}
        assert {f'{{"i":{i}}}' for i in range(20)} == {r["inputs"] for r in children}
        assert {"success"} == {r["status"] for r in children}

    def test_tasks_created_in_a_block_nest_under_it(self, db: str) -> None:
        """Tasks created inside async with inherit the block as parent."""

        @traced_execution(name="job")
        async def job(i):
            await asyncio.sleep(0)
            return i

        async def main():
            async with execution("batch") as batch:
                tasks = [asyncio.create_task(job(i)) for i in range(5)]
                await asyncio.gather(*tasks)
            return batch

        batch = asyncio.run(main())

        jobs = rows(db, "name = 'job'")
        assert 5 == len(jobs)
        assert {batch.execution_id} == {r["parent_execution_id"] for r in jobs}


class TestThreads:
    """contextvars do not cross threads by themselves; propagate() carries them."""

    def test_plain_thread_is_a_root(self, db: str) -> None:
        """A traced call in a plain Thread started inside an execution is a root."""

        @traced_execution(name="in-thread")
        def work():
            return 1

        with execution("outer"):
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()

        row = one(db, "in-thread")
        assert row["parent_execution_id"] is None
        assert row["execution_id"] == row["correlation_id"]
        assert "manual" == row["trigger_kind"]

    def test_propagate_in_a_thread(self, db: str) -> None:
        """A call run through propagate(fn) in another thread nests under the caller."""
        seen: list[Any] = []

        @traced_execution(name="in-thread")
        def work():
            seen.append(current_execution())

        with execution("outer") as outer:
            thread = threading.Thread(target=execlog.propagate(work))
            thread.start()
            thread.join()

        row = one(db, "in-thread")
        assert outer.execution_id == row["parent_execution_id"]
        assert outer.correlation_id == row["correlation_id"]
        assert "child" == row["trigger_kind"]
        assert row["thread_id"] != one(db, "outer")["thread_id"]
        assert 1 == len(seen)

    def test_propagated_callable_run_concurrently_many_times(self, db: str) -> None:
        """One propagated callable, run 40 times on an 8-thread pool, 8 at once at first."""
        workers = 8
        barrier = threading.Barrier(workers, timeout=10)

        @traced_execution(name="task")
        def task(i):
            return current_execution().parent_execution_id

        def run(i):
            outer_seen = current_execution()
            if i < workers:
                barrier.wait()  # the first 8 runs overlap
            return outer_seen, task(i)

        with execution("outer") as outer:
            job = execlog.propagate(run)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = [f.result() for f in [pool.submit(job, i) for i in range(40)]]
            assert outer is current_execution()

        assert [(outer, outer.execution_id)] * 40 == results
        tasks = rows(db, "name = 'task'")
        assert 40 == len(tasks)
        assert {outer.execution_id} == {r["parent_execution_id"] for r in tasks}
        assert {outer.correlation_id} == {r["correlation_id"] for r in tasks}
        assert {"success"} == {r["status"] for r in tasks}

    def test_propagate_captures_the_context_when_called(self, db: str) -> None:
        """The context is the one propagate() was called in, not the one it later runs in."""

        @traced_execution(name="work")
        def work():
            return 1

        with execution("first") as first:
            job = execlog.propagate(work)
        with execution("second"):
            job()

        assert first.execution_id == one(db, "work")["parent_execution_id"]

    def test_propagate_keeps_signature_and_result(self, db: str) -> None:
        """propagate(fn) returns what fn returns and passes arguments through."""

        def add(a, b=1):
            """Add."""
            return a + b

        with execution("outer"):
            job = execlog.propagate(add)

        assert 5 == job(2, b=3)
        assert "add" == job.__name__


class TestExplicitLineage:
    """parent=, correlation_id= and run_id= given to execution()."""

    def _original(self) -> tuple[Any, Any]:
        """A finished execution 'original' nested under a root 'root'."""
        with execution("root") as root, execution("original") as original:
            pass
        return root, original

    @pytest.mark.parametrize("form", ["handle", "stored-execution", "id"])
    def test_retry_with_explicit_parent(self, form: str, db: str) -> None:
        """A retry records the given parent and inherits its correlation, wherever it runs."""
        root, original = self._original()
        if form == "handle":
            parent: Any = original
        elif form == "stored-execution":
            assert execlog.flush(timeout=10)
            with execlog.open_store(db) as store:
                parent = store.get(original.execution_id)
            assert isinstance(parent, execlog.Execution)
        else:
            parent = original.execution_id

        with (
            execution("supervisor"),
            execution("retry", parent=parent, trigger_kind="retry") as retry,
        ):
            pass

        row = one(db, "retry")
        assert original.execution_id == row["parent_execution_id"]
        assert root.execution_id == row["correlation_id"]
        assert "retry" == row["trigger_kind"]
        assert original.execution_id == retry.parent_execution_id
        assert root.execution_id == retry.correlation_id

    def test_retry_children_follow_the_retry(self, db: str) -> None:
        """Traced calls inside a retry nest under the retry, with the inherited correlation."""
        root, original = self._original()

        @traced_execution(name="step")
        def step():
            return 1

        with execution("retry", parent=original.execution_id, trigger_kind="retry") as retry:
            step()

        row = one(db, "step")
        assert retry.execution_id == row["parent_execution_id"]
        assert root.execution_id == row["correlation_id"]

    def test_parent_equal_to_current_execution(self, db: str) -> None:
        """parent= naming the current execution by id behaves like plain nesting."""
        with execution("outer") as outer, execution("inner", parent=outer.execution_id):
            pass

        row = one(db, "inner")
        assert outer.execution_id == row["parent_execution_id"]
        assert outer.correlation_id == row["correlation_id"]

    def test_correlation_id_override(self, db: str) -> None:
        """correlation_id= is recorded and inherited by children."""

        @traced_execution(name="child")
        def child():
            return 1

        with execution("root", correlation_id="corr-fixed") as root:
            child()

        assert "corr-fixed" == root.correlation_id
        assert "corr-fixed" == one(db, "root")["correlation_id"]
        assert "corr-fixed" == one(db, "child")["correlation_id"]
        assert root.execution_id == one(db, "child")["parent_execution_id"]

    def test_correlation_id_override_when_nested(self, db: str) -> None:
        """A nested execution may start a new correlation and still record its parent."""
        with execution("outer") as outer, execution("inner", correlation_id="other"):
            pass

        row = one(db, "inner")
        assert outer.execution_id == row["parent_execution_id"]
        assert "other" == row["correlation_id"]

    def test_run_id_inherited_by_children(self, db: str) -> None:
        """run_id= is recorded and inherited at every depth; other roots have none."""

        @traced_execution(name="leaf")
        def leaf():
            return 1

        @traced_execution(name="middle")
        def middle():
            return leaf()

        with execution("batch", run_id="run-42"):
            middle()
        with execution("unrelated"):
            pass

        assert ["run-42"] * 3 == [one(db, n)["run_id"] for n in ("batch", "middle", "leaf")]
        assert one(db, "unrelated")["run_id"] is None

    def test_run_id_through_propagate(self, db: str) -> None:
        """run_id reaches work run in another thread through propagate()."""

        @traced_execution(name="work")
        def work():
            return 1

        with execution("batch", run_id="run-7"):
            thread = threading.Thread(target=execlog.propagate(work))
            thread.start()
            thread.join()

        assert "run-7" == one(db, "work")["run_id"]


class TestCarriers:
    """inject() and extract()."""

    @pytest.mark.parametrize("style", ["env", "http"])
    def test_inject_outside_an_execution_leaves_carrier_unchanged(self, style: str) -> None:
        """Outside any execution the same carrier comes back untouched."""
        carrier = {"PATH": "/bin"}

        result = execlog.inject(carrier, style=style)

        assert carrier is result
        assert {"PATH": "/bin"} == carrier

    def test_inject_outside_with_default_style(self) -> None:
        """inject({}) outside any execution returns the carrier unchanged."""
        carrier: dict[str, str] = {}

        assert carrier is execlog.inject(carrier)
        assert {} == carrier

    def test_inject_env_style(self, db: str) -> None:
        """Inside an execution, env-style keys carry its id and correlation."""
        with execution("outer") as outer:
            carrier = {"PATH": "/bin"}
            result = execlog.inject(carrier)

        assert carrier is result
        assert {
            "PATH": "/bin",
            "EXECLOG_PARENT_ID": outer.execution_id,
            "EXECLOG_CORRELATION_ID": outer.correlation_id,
            "EXECLOG_SAMPLED": "1",
            "EXECLOG_DB": db,
        } == carrier

    @pytest.mark.parametrize(
        ("configured", "expected"),
        [
            ("runs.db", "{cwd}/runs.db"),
            ("./sub/../runs.db", "{cwd}/runs.db"),
            ("sqlite:///rel.db", "{cwd}/rel.db"),
            ("sqlite:////{cwd}/abs.db", "{cwd}/abs.db"),
        ],
    )
    def test_inject_env_style_carries_the_absolute_database(
        self, configured: str, expected: str, tmp_path: Path
    ) -> None:
        """EXECLOG_DB is this process's database as an absolute path, whatever the spelling."""
        cwd = str(tmp_path)  # the autouse fixture runs every test in tmp_path
        execlog.configure(db=configured.format(cwd=cwd.lstrip("/")))
        with execution("outer"):
            carrier = execlog.inject({})

        assert expected.format(cwd=cwd) == carrier["EXECLOG_DB"]
        assert os.path.isabs(carrier["EXECLOG_DB"])

    def test_inject_names_the_file_written_after_a_chdir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A relative db is where the writer opened it, not where the process is now."""
        execlog.configure(db="runs.db")
        with execution("first"):
            pass
        assert execlog.flush(timeout=10)
        (tmp_path / "work").mkdir()
        monkeypatch.chdir(tmp_path / "work")
        with execution("outer"):
            carrier = execlog.inject({})

        assert str(tmp_path / "runs.db") == carrier["EXECLOG_DB"]

    def test_inject_keeps_the_carriers_own_database(self, db: str) -> None:
        """A carrier that already names a database keeps it (the caller chose it)."""
        with execution("outer"):
            carrier = execlog.inject({"EXECLOG_DB": "/elsewhere/own.db"})

        assert "/elsewhere/own.db" == carrier["EXECLOG_DB"]

    def test_inject_passes_no_private_memory_database(self) -> None:
        """``:memory:`` belongs to this process: no EXECLOG_DB for a child."""
        execlog.configure(db=":memory:")
        with execution("outer") as outer:
            carrier = execlog.inject({})

        assert {"EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID", "EXECLOG_SAMPLED"} == set(carrier)
        assert execlog.flush(timeout=10)
        with execlog.open_store(":memory:") as store:  # shared by the process: leave it empty
            assert 1 == store.delete(outer.execution_id)

    def test_http_style_carries_no_database(self, db: str) -> None:
        """Headers never name a database: a server records where it is configured to."""
        with execution("outer"):
            headers = execlog.inject({}, style="http")

        assert {"Execlog-Parent-Id", "Execlog-Correlation-Id", "Execlog-Sampled"} == set(headers)

    def test_inject_http_style(self, db: str) -> None:
        """style='http' writes header-style keys of the innermost execution."""
        with execution("outer", correlation_id="corr-1"), execution("inner") as inner:
            headers = execlog.inject({}, style="http")

        assert {
            "Execlog-Parent-Id": inner.execution_id,
            "Execlog-Correlation-Id": "corr-1",
            "Execlog-Sampled": "1",
        } == headers

    def test_inject_values_are_str(self, db: str) -> None:
        """Injected keys and values are str."""

        @traced_execution
        def target():
            return execlog.inject({}), execlog.inject({}, style="http")

        env, headers = target()
        assert 4 == len(env)
        assert 3 == len(headers)
        for carrier in (env, headers):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in carrier.items())

    @pytest.mark.parametrize(
        ("parent_key", "correlation_key"),
        [
            ("EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID"),
            ("execlog_parent_id", "execlog_correlation_id"),
            ("Execlog-Parent-Id", "Execlog-Correlation-Id"),
            ("execlog-parent-id", "execlog-correlation-id"),
            ("EXECLOG-PARENT-ID", "EXECLOG-CORRELATION-ID"),
        ],
    )
    def test_extract_reads_either_spelling(self, parent_key: str, correlation_key: str) -> None:
        """extract() reads env and http spellings, in any letter case."""
        context = execlog.extract({parent_key: "p-1", correlation_key: "c-1", "Other": "x"})

        assert context is not None
        assert ("p-1", "c-1") == (context.parent_execution_id, context.correlation_id)

    @pytest.mark.parametrize("style", ["env", "http"])
    def test_handler_nests_under_injected_parent(self, style: str, db: str) -> None:
        """execution(..., context=extract(carrier)) nests under the injecting execution."""
        with execution("client") as client, execution("request") as request:
            carrier = execlog.inject({}, style=style)

        with execution("handler", context=execlog.extract(carrier)) as handler:
            pass

        row = one(db, "handler")
        assert request.execution_id == row["parent_execution_id"]
        assert client.execution_id == row["correlation_id"]
        assert "child" == row["trigger_kind"]
        assert request.execution_id == handler.parent_execution_id

    def test_handler_with_empty_carrier_is_a_root(self, db: str) -> None:
        """A carrier with no lineage gives a root execution."""
        with execution("handler", context=execlog.extract({"Accept": "*/*"})) as handler:
            pass

        row = one(db, "handler")
        assert row["parent_execution_id"] is None
        assert handler.execution_id == row["correlation_id"]


CHILD_PROCESS = """
import execlog

@execlog.traced_execution(name="child-step")
def step():
    return 1

with execlog.execution("child-process"):
    step()
assert execlog.flush(timeout=10)
"""


class TestProcesses:
    """Lineage across processes, through the environment."""

    def test_subprocess_nests_under_the_launching_execution(self, db: str) -> None:
        """A subprocess started with inject(dict(os.environ)) records under its launcher."""
        with execution("launcher") as launcher:
            env = execlog.inject(dict(os.environ))
            env["EXECLOG_DB"] = db
            result = subprocess.run(
                [sys.executable, "-c", CHILD_PROCESS],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        assert 0 == result.returncode, result.stderr
        child, step = one(db, "child-process"), one(db, "child-step")
        assert launcher.execution_id == child["parent_execution_id"]
        assert launcher.correlation_id == child["correlation_id"]
        assert "child" == child["trigger_kind"]
        assert child["execution_id"] == step["parent_execution_id"]
        assert launcher.correlation_id == step["correlation_id"]
        assert os.getpid() != child["pid"]
        assert "success" == child["status"]
        assert "success" == one(db, "launcher")["status"]

    def test_child_in_another_directory_records_where_its_parent_does(
        self, implementation: str, tmp_path: Path
    ) -> None:
        """configure(db="runs.db") + inject(dict(os.environ)): a child started in another
        working directory records into the parent's runs.db, not its own ./execlog.db."""
        execlog.configure(db="runs.db")  # relative to the parent's directory
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()

        @traced_execution(name="launcher")
        def launch() -> subprocess.CompletedProcess[str]:
            env = execlog.inject(dict(os.environ))
            if implementation == "python":
                env["EXECLOG_PURE_PYTHON"] = "1"
            return subprocess.run(
                [sys.executable, "-c", CHILD_PROCESS],
                env=env,
                cwd=elsewhere,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        result = launch()

        assert 0 == result.returncode, result.stderr
        db = str(tmp_path / "runs.db")
        launcher = one(db, "launcher")
        child = one(db, "child-process")
        assert launcher["execution_id"] == child["parent_execution_id"]
        assert child["execution_id"] == one(db, "child-step")["parent_execution_id"]
        assert not (elsewhere / "execlog.db").exists()

    def test_environment_makes_roots_children(
        self, db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EXECLOG_PARENT_ID/EXECLOG_CORRELATION_ID in the environment parent our roots."""
        parent_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        monkeypatch.setenv("EXECLOG_PARENT_ID", parent_id)
        monkeypatch.setenv("EXECLOG_CORRELATION_ID", correlation_id)

        @traced_execution(name="traced-root")
        def traced_root():
            return 1

        @traced_execution(name="nested")
        def nested():
            return 1

        traced_root()
        with execution("block-root") as block_root:
            nested()

        for name in ("traced-root", "block-root"):
            row = one(db, name)
            assert parent_id == row["parent_execution_id"], name
            assert correlation_id == row["correlation_id"], name
            assert "child" == row["trigger_kind"], name
        row = one(db, "nested")
        assert block_root.execution_id == row["parent_execution_id"]
        assert correlation_id == row["correlation_id"]


class TestIdsAndMetadata:
    """Execution ids and the process/thread/host/time fields."""

    def test_uuid7_format(self, db: str) -> None:
        """Ids are canonical UUIDv7 strings (version 7, RFC variant)."""
        with execution("a") as a:
            pass

        parsed = uuid.UUID(a.execution_id)
        assert 7 == parsed.version
        assert uuid.RFC_4122 == parsed.variant
        assert str(parsed) == a.execution_id
        assert UUID7.match(a.execution_id)
        assert a.execution_id == one(db, "a")["execution_id"]

    def test_uuid7_timestamp_is_the_start_time(self, db: str) -> None:
        """The id's 48-bit millisecond timestamp is (about) the recorded start."""
        with execution("a") as a:
            pass

        id_ms = int(a.execution_id.replace("-", "")[:12], 16)
        assert abs(one(db, "a")["started_at"] // 1000 - id_ms) <= 1

    def test_unique_and_sorted_over_10000_calls(self, db: str) -> None:
        """10,000 ids from one thread are unique and sort in creation order."""

        @traced_execution(name="tick", capture_inputs=False, capture_output=False)
        def tick():
            return current_execution().execution_id

        ids = [tick() for _ in range(10_000)]

        assert 10_000 == len(set(ids))
        assert sorted(ids) == ids
        assert all(UUID7.match(i) for i in ids)
        stored = rows(db, "name = 'tick'")
        assert set(ids) == {r["execution_id"] for r in stored}

    def test_store_times_are_aware_utc(self, db: str) -> None:
        """started_at/ended_at read through the store are timezone-aware UTC datetimes."""
        before = dt.datetime.now(dt.timezone.utc)
        with execution("a") as a:
            pass
        after = dt.datetime.now(dt.timezone.utc)
        assert execlog.flush(timeout=10)

        with execlog.open_store(db) as store:
            ex = store.get(a.execution_id)

        assert ex is not None
        for value in (ex.started_at, ex.ended_at):
            assert value.tzinfo is not None
            assert dt.timedelta(0) == value.utcoffset()
        slack = dt.timedelta(milliseconds=1)
        assert before - slack <= ex.started_at <= ex.ended_at <= after + slack

    def test_raw_times_are_integer_microseconds(self, db: str) -> None:
        """In the table, started_at/ended_at are integer microseconds since the epoch."""
        with execution("a"):
            pass

        row = one(db, "a")
        assert isinstance(row["started_at"], int)
        assert isinstance(row["ended_at"], int)
        now_us = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1_000_000)
        assert 0 <= now_us - row["started_at"] < 60_000_000

    def test_pid_host_thread(self, db: str) -> None:
        """pid is this process, host the (non-empty) host name, thread_id an int per thread."""
        barrier = threading.Barrier(2, timeout=10)

        @traced_execution(name="in-thread")
        def work(i):
            barrier.wait()  # both threads alive at once: their ids are distinct

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with execution("main-a"), execution("main-b"):
            pass

        assert execlog.flush(timeout=10)
        with execlog.open_store(db) as store:
            recorded = store.list(limit=10)
        assert 4 == len(recorded)
        for ex in recorded:
            assert os.getpid() == ex.pid
            assert isinstance(ex.thread_id, int)
            assert isinstance(ex.host, str)
            assert ex.host
            assert socket.gethostname() == ex.host
        by_name: dict[str, list[int]] = {}
        for ex in recorded:
            by_name.setdefault(ex.name, []).append(ex.thread_id)
        assert 2 == len(set(by_name["in-thread"]))
        assert by_name["main-a"] == by_name["main-b"]
        assert by_name["main-a"][0] not in by_name["in-thread"]

    def test_store_round_trip(self, db: str) -> None:
        """open_store().get returns the same lineage and decoded fields the handle had."""

        @traced_execution(name="child")
        def child(n):
            return {"n": n}

        with execution("root", inputs={"k": [1, 2]}, tags={"t": 1}, run_id="r") as root:
            child(3)
        assert execlog.flush(timeout=10)

        with execlog.open_store(db) as store:
            stored_root = store.get(root.execution_id)
            [stored_child] = store.list(name="child", correlation_id=root.correlation_id)

        assert stored_root is not None
        assert {"k": [1, 2]} == stored_root.inputs
        assert {"t": 1} == stored_root.tags
        assert "r" == stored_root.run_id
        assert root.execution_id == stored_child.parent_execution_id
        assert root.correlation_id == stored_child.correlation_id
        assert {"n": 3} == stored_child.inputs
        assert {"n": 3} == stored_child.output
        assert "child" == stored_child.trigger_kind


class TestPropagateChecksItsArgument:
    @pytest.mark.parametrize("bad", [None, 5, "work"])
    def test_not_callable(self, bad: Any) -> None:
        """propagate() of something that cannot be called fails at once, not later in a pool."""
        with pytest.raises(TypeError, match="callable"):
            execlog.propagate(bad)


class TestShareableLocation:
    """What inject() puts in EXECLOG_DB for each kind of ``db`` setting."""

    @pytest.mark.parametrize(
        ("db", "expected"),
        [
            (":memory:", None),
            ("file:x?mode=memory&cache=shared", None),
            ("file:/data/runs.db", "file:/data/runs.db"),
            ("sqlite:////data/runs.db", "/data/runs.db"),
            ("postgresql://app:s3cret@db.internal/runs", "postgresql://app@db.internal/runs"),
            (
                "postgresql://db.internal/runs?sslmode=require&password=s3cret",
                "postgresql://db.internal/runs?sslmode=require",
            ),
            ("http://:tok@collector:8642", "http://collector:8642"),
            ("http://collector:8642", "http://collector:8642"),
        ],
    )
    def test_location(self, db: str, expected: str | None) -> None:
        """Paths become absolute, URLs lose their credentials, a private memory db is None."""
        from execlog._storage import shareable_location

        assert expected == shareable_location(db)
