"""A child's times lie within its parent's, and siblings run one after another are ordered.

Wall times derive from one monotonic reading per execution (``_clock``), so no amount of time
spent encoding inputs, starting the writer or waiting for a busy CPU can put a child outside
its parent: on every path (C and Python; decorator, block, async, generators).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import sqlite3
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from execlog import _clock
from execlog._recorder import RECORDER

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("implementation")


class SlowToEncode:
    """An argument whose repr takes a while: encoding it happens between the parent's start
    and its code."""

    def __repr__(self) -> str:
        deadline = time.perf_counter() + 0.0001
        while time.perf_counter() < deadline:
            pass
        return "slow"


@execlog.traced_execution(name="leaf")
def leaf(x: Any) -> Any:
    return x


@execlog.traced_execution(name="middle")
def middle(x: Any) -> int:
    leaf(x)
    leaf(x)
    return 1


@execlog.traced_execution(name="agen")
def produce(n: int) -> Iterator[int]:
    for i in range(n):
        leaf(i)
        yield i


@execlog.traced_execution(name="amiddle")
async def amiddle(x: Any) -> int:
    leaf(x)
    await asyncio.sleep(0)
    leaf(x)
    return 1


def _tree(i: int) -> None:
    with execlog.execution("root", inputs={"slow": SlowToEncode(), "i": i}):
        middle(SlowToEncode())
        with execlog.execution("block", inputs={"slow": SlowToEncode()}):
            leaf(i)
        list(produce(2))
        asyncio.run(amiddle(SlowToEncode()))


def _check(db: str) -> int:
    """Assert containment and sibling order for every tree; return how many were checked."""
    conn = sqlite3.connect(db)
    try:
        found = conn.execute(
            "SELECT execution_id, parent_execution_id, started_at, ended_at, correlation_id "
            "FROM executions ORDER BY started_at, execution_id"
        ).fetchall()
    finally:
        conn.close()
    by_id = {row[0]: row for row in found}
    children: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in found:
        _, parent, started, ended, _ = row
        assert started <= ended, row
        if parent is not None:
            p = by_id[parent]
            assert p[2] <= started <= ended <= p[3], (p, row)
            children[parent].append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r[2], r[0]))
        for before, after in itertools.pairwise(siblings):
            assert before[3] <= after[2], (before, after)  # run one after the other
    return len({row[4] for row in found})


class TestNesting:
    def test_hundreds_of_trees_nest(self, db: str) -> None:
        """300 trees of blocks, traced calls, generators and coroutines under arguments that
        are slow to encode: every child lies within its parent, siblings are ordered."""
        for i in range(300):
            _tree(i)
        assert execlog.flush(timeout=30)
        assert 300 == _check(db)

    @pytest.mark.slow
    def test_nesting_holds_under_a_cpu_hog(self, db: str) -> None:
        """With another process spinning on every core, 1,000 trees still nest."""
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        hogs = [ctx.Process(target=_spin, args=(stop,)) for _ in range(os.cpu_count() or 2)]
        for hog in hogs:
            hog.start()
        try:
            for i in range(1000):
                _tree(i)
        finally:
            stop.set()
            for hog in hogs:
                hog.join(10)
        assert execlog.flush(timeout=60)
        assert 1000 == _check(db)


def _spin(stop: Any) -> None:
    while not stop.is_set():
        sum(range(10_000))


class TestClock:
    def test_wall_time_follows_the_anchor(self, db: str) -> None:
        """Recorded times are the monotonic clock mapped by the process's offset, which stays
        within ``MAX_DRIFT_NS`` of the wall clock (a wall clock being slewed drifts from it)."""
        offset = RECORDER.clock_offset
        wall = time.time_ns()
        before = (time.perf_counter_ns() + offset) // 1000
        with execlog.execution("now"):
            pass
        after = (time.perf_counter_ns() + offset) // 1000
        assert execlog.flush()
        conn = sqlite3.connect(db)
        [(started, ended)] = conn.execute("SELECT started_at, ended_at FROM executions").fetchall()
        conn.close()
        assert before <= started <= ended <= after
        assert abs(before * 1000 - wall) <= _clock.MAX_DRIFT_NS + 5_000_000

    def test_anchor_is_read_again_when_the_wall_clock_steps(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The writer reads the anchor again when the wall clock was set away from it."""
        offset = RECORDER.clock_offset
        assert not _clock.drifted(offset)
        RECORDER.clock_offset = offset - 10 * _clock.MAX_DRIFT_NS
        assert _clock.drifted(RECORDER.clock_offset)
        RECORDER._check_clock()
        assert abs(RECORDER.clock_offset - offset) < _clock.MAX_DRIFT_NS
