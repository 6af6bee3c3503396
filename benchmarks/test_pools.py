"""What ``instrument_threads()`` costs per task submitted to a pool (pytest-benchmark).

Run with ``python -m pytest benchmarks/test_pools.py -q``. Nothing here asserts on timing.

- ``pool-task``: ``TASKS`` no-op tasks submitted to a one-thread ``ThreadPoolExecutor`` and
  waited for, per round: the standard library alone, instrumented outside any execution, and
  instrumented from inside an execution (each task then runs under it). The per-task time is
  in the per-unit summary; the difference between the rows is what carrying the execution
  adds to a task.
- ``process-task``: the same with a two-process ``ProcessPoolExecutor`` (fork), where the task
  also carries the submitter's lineage and configuration through pickling.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import TYPE_CHECKING, Any

import pytest

import execlog

if TYPE_CHECKING:
    from collections.abc import Iterator

TASKS = 2_000
PROCESS_TASKS = 500


def noop() -> None:
    return None


@pytest.fixture
def instrumented(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = str(request.param)
    if mode != "bare":
        execlog.instrument_threads()
    try:
        yield mode
    finally:
        execlog.uninstrument_threads()


def per_unit(benchmark: Any, count: int) -> None:
    benchmark.extra_info["divide_by"] = count
    benchmark.extra_info["unit"] = "task"


def submit_all(pool: cf.Executor, count: int, mode: str) -> None:
    if mode == "in-execution":
        with execlog.execution("submitter"):
            for future in [pool.submit(noop) for _ in range(count)]:
                future.result()
    else:
        for future in [pool.submit(noop) for _ in range(count)]:
            future.result()


PARAMS = ["bare", "instrumented", "in-execution"]


@pytest.mark.benchmark(group="pool-task")
@pytest.mark.parametrize("instrumented", PARAMS, indirect=True)
def test_thread_pool_task(benchmark: Any, instrumented: str, tmp_path: Any) -> None:
    execlog.configure(db=str(tmp_path / "pool.db"))
    per_unit(benchmark, TASKS)
    with cf.ThreadPoolExecutor(1) as pool:
        benchmark.pedantic(submit_all, args=(pool, TASKS, instrumented), rounds=5)


@pytest.mark.benchmark(group="process-task")
@pytest.mark.parametrize("instrumented", PARAMS, indirect=True)
def test_process_pool_task(benchmark: Any, instrumented: str, tmp_path: Any) -> None:
    execlog.configure(db=str(tmp_path / "pool.db"))
    per_unit(benchmark, PROCESS_TASKS)
    context = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(2, mp_context=context) as pool:
        benchmark.pedantic(submit_all, args=(pool, PROCESS_TASKS, instrumented), rounds=3)
