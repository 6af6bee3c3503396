"""``instrument_threads()``: threads and pools carry the submitting execution (API.md section 7)."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import inspect
import multiprocessing
import multiprocessing.pool
import threading
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows, run_example

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _uninstrumented_after() -> Iterator[None]:
    yield
    execlog.uninstrument_threads()


@execlog.traced_execution
def double(x: int) -> int:
    """A module-level traced function: picklable, so process pools can run it."""
    return x * 2


@execlog.traced_execution
def pair(x: int, y: int) -> int:
    return x + y


def fails(x: int) -> int:
    msg = f"bad {x}"
    raise KeyError(msg)


def by_name(db: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows(db):
        out.setdefault(row["name"], []).append(row)
    return out


def assert_children(db: str, parent: str, child: str, count: int) -> None:
    """Every ``child`` row nests under the one ``parent`` row, in its correlation."""
    found = by_name(db)
    (root,) = found[parent]
    children = found.get(child, [])
    assert count == len(children), found
    for row in children:
        assert root["execution_id"] == row["parent_execution_id"]
        assert root["correlation_id"] == row["correlation_id"]
        assert "child" == row["trigger_kind"]


class TestThreads:
    def test_thread_pool_map_and_submit_nest(self, db: str, implementation: str) -> None:
        execlog.instrument_threads()

        @execlog.traced_execution(name="leaf")
        def leaf(x: int) -> int:
            return x + 1

        @execlog.traced_execution(name="root")
        def root() -> list[int]:
            with cf.ThreadPoolExecutor(3) as pool:
                mapped = list(pool.map(leaf, range(6)))
                submitted = [pool.submit(leaf, x).result() for x in range(2)]
            return mapped + submitted

        assert [1, 2, 3, 4, 5, 6, 1, 2] == root()
        assert_children(db, "root", "leaf", 8)

    def test_a_pool_created_before_instrumenting(self, db: str, implementation: str) -> None:
        pool = cf.ThreadPoolExecutor(2)
        pool.submit(int).result()  # its worker thread exists before instrumenting
        try:
            execlog.instrument_threads()
            with execlog.execution("root"):
                pool.submit(double, 1).result()
            assert_children(db, "root", "double", 1)
        finally:
            pool.shutdown()

    def test_nested_pools(self, db: str, implementation: str) -> None:
        execlog.instrument_threads()

        @execlog.traced_execution(name="inner")
        def inner(x: int) -> int:
            return x

        @execlog.traced_execution(name="middle")
        def middle(x: int) -> int:
            with cf.ThreadPoolExecutor(2) as pool:
                return sum(pool.map(inner, [x, x]))

        with execlog.execution("root"), cf.ThreadPoolExecutor(2) as outer:
            assert [0, 2, 4] == list(outer.map(middle, range(3)))
        found = by_name(db)
        middles = {r["execution_id"] for r in found["middle"]}
        assert 3 == len(middles)
        assert 6 == len(found["inner"])
        assert all(r["parent_execution_id"] in middles for r in found["inner"])
        (root,) = found["root"]
        assert {root["correlation_id"]} == {r["correlation_id"] for r in rows(db)}

    def test_a_worker_never_keeps_a_stale_execution(self, db: str, implementation: str) -> None:
        """A worker thread started inside one execution does not nest later work under it."""
        execlog.instrument_threads()
        with cf.ThreadPoolExecutor(1) as pool:
            with execlog.execution("first"):
                pool.submit(double, 1).result()  # starts the worker thread here
            pool.submit(double, 2).result()  # submitted outside any execution: a root
        found = by_name(db)
        (first,) = found["first"]
        nested, alone = found["double"]
        assert first["execution_id"] == nested["parent_execution_id"]
        assert (None, "manual") == (alone["parent_execution_id"], alone["trigger_kind"])

    def test_thread_start_carries_the_execution(self, db: str, implementation: str) -> None:
        execlog.instrument_threads()

        class Worker(threading.Thread):
            def run(self) -> None:
                double(3)

        with execlog.execution("root"):
            threads = [threading.Thread(target=double, args=(1,)), Worker()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        outside = threading.Thread(target=double, args=(2,))
        outside.start()
        outside.join()
        assert "run" not in threads[0].__dict__  # the bridge is gone once the thread runs
        found = by_name(db)
        (root,) = found["root"]
        parents = sorted(str(r["parent_execution_id"]) for r in found["double"])
        assert sorted([root["execution_id"], root["execution_id"], "None"]) == parents

    def test_run_in_executor_and_to_thread(self, db: str, implementation: str) -> None:
        execlog.instrument_threads()

        @execlog.traced_execution(name="main")
        async def main() -> list[int]:
            loop = asyncio.get_running_loop()
            a = await loop.run_in_executor(None, double, 1)
            with cf.ThreadPoolExecutor(1) as pool:
                b = await loop.run_in_executor(pool, double, 2)
            c = await asyncio.to_thread(double, 3)
            return [a, b, c]

        assert [2, 4, 6] == asyncio.run(main())
        assert_children(db, "main", "double", 3)

    def test_multiprocessing_thread_pool(self, db: str, implementation: str) -> None:
        execlog.instrument_threads()
        with execlog.execution("root"), multiprocessing.pool.ThreadPool(2) as pool:
            assert [0, 2, 4] == pool.map(double, range(3))
            assert 10 == pool.apply_async(double, (5,)).get()
            assert [3] == pool.starmap(pair, [(1, 2)])
        found = by_name(db)
        (root,) = found["root"]
        assert 4 == len(found["double"])
        assert all(r["parent_execution_id"] == root["execution_id"] for r in found["double"])
        assert root["execution_id"] == found["pair"][0]["parent_execution_id"]


class TestSwitch:
    def test_idempotent_and_undone(self, db: str) -> None:
        originals = (cf.ThreadPoolExecutor.submit, threading.Thread.start)
        execlog.instrument_threads()
        patched = (cf.ThreadPoolExecutor.submit, threading.Thread.start)
        execlog.instrument_threads()
        assert patched == (cf.ThreadPoolExecutor.submit, threading.Thread.start)
        execlog.uninstrument_threads()
        assert originals == (cf.ThreadPoolExecutor.submit, threading.Thread.start)
        execlog.uninstrument_threads()  # twice is fine

    def test_after_uninstrument_pools_old_and_new_carry_nothing(self, db: str) -> None:
        old = cf.ThreadPoolExecutor(1)
        try:
            execlog.instrument_threads()
            old.submit(int).result()
            execlog.uninstrument_threads()
            new = cf.ThreadPoolExecutor(1)
            with execlog.execution("root"):
                old.submit(double, 1).result()
                new.submit(double, 2).result()
            new.shutdown()
        finally:
            old.shutdown()
        assert [None, None] == [r["parent_execution_id"] for r in by_name(db)["double"]]

    def test_names_signatures_and_exceptions_stay(self, db: str) -> None:
        before = {
            name: inspect.signature(getattr(cls, name))
            for cls, name in (
                (cf.ThreadPoolExecutor, "submit"),
                (cf.ProcessPoolExecutor, "submit"),
                (threading.Thread, "start"),
                (multiprocessing.pool.Pool, "map"),
            )
        }
        execlog.instrument_threads()
        for qualname, signature in before.items():
            method = {
                "submit": cf.ThreadPoolExecutor.submit,
                "start": threading.Thread.start,
                "map": multiprocessing.pool.Pool.map,
            }[qualname]
            assert qualname == method.__name__
            assert signature == inspect.signature(method)
        with cf.ThreadPoolExecutor(1) as pool, execlog.execution("root"):
            future = pool.submit(fails, 1)
            with pytest.raises(KeyError, match="bad 1"):
                future.result()
            assert isinstance(future.exception(), KeyError)


def _process_work(pool_kind: str, method: str) -> Callable[[], list[int]]:
    context = multiprocessing.get_context(method)

    def work() -> list[int]:
        if pool_kind == "executor":
            with cf.ProcessPoolExecutor(2, mp_context=context) as pool:
                out = list(pool.map(double, range(6), chunksize=2))
                out.append(pool.submit(pair, 1, 2).result())
                return out
        with context.Pool(2) as pool:  # leaving the block terminates the workers
            out = pool.map(double, range(6), chunksize=2)
            out.append(pool.apply_async(pair, (1, 2)).get())
            out += list(pool.imap(double, [10, 11]))
            out += pool.starmap(pair, [(5, 5)])
            return out

    return work


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("pool_kind", ["executor", "multiprocessing"])
class TestProcesses:
    def test_work_nests_in_the_worker(self, db: str, pool_kind: str, method: str) -> None:
        """Every task's executions land in the submitter's database, under the submitter."""
        execlog.instrument_threads()
        work = _process_work(pool_kind, method)
        with execlog.execution("root"):
            out = work()
        found = by_name(db)
        (root,) = found["root"]
        expected = 7 if pool_kind == "executor" else 10
        children = found["double"] + found["pair"]
        assert expected == len(children) == len(out), found
        for row in children:
            assert root["execution_id"] == row["parent_execution_id"]
            assert root["correlation_id"] == row["correlation_id"]
        assert {root["pid"]} != {row["pid"] for row in children}

    def test_outside_an_execution_tasks_are_roots(
        self, db: str, pool_kind: str, method: str
    ) -> None:
        execlog.instrument_threads()
        out = _process_work(pool_kind, method)()
        found = rows(db)  # the workers record where the submitter does, spawned ones too
        assert len(out) == len(found)
        assert all(r["parent_execution_id"] is None for r in found)
        assert all(r["trigger_kind"] == "manual" for r in found)


def test_the_example_runs(tmp_path: Path) -> None:
    """``examples/pools.py``: threads and processes nest under the workflow, in ./execlog.db."""
    stdout = run_example("pools.py", tmp_path)
    lines = stdout.splitlines()
    assert lines[0].startswith("nightly")
    assert 6 == sum("fetch" in line for line in lines[1:])
    assert 6 == sum("checksum" in line for line in lines[1:])
    assert (tmp_path / "execlog.db").exists()
