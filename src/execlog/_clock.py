"""Wall-clock times from the monotonic clock: one anchor per process.

An execution's start and end are monotonic readings mapped to wall time by one offset, so in a
process a child's ``[started_at, ended_at]`` always lies within its parent's and siblings run
one after another are ordered, whatever the wall clock does meanwhile. The offset is read anew
after ``fork`` and whenever the wall clock has been set more than :data:`MAX_DRIFT_NS` away
from it (the writer thread checks at each wake-up); executions spanning such a step keep the
offset they started with.
"""

from __future__ import annotations

import time

__all__ = ["MAX_DRIFT_NS", "anchor", "drifted"]

#: How far wall time may move from the anchored clock before the anchor is read again.
MAX_DRIFT_NS = 50_000_000

_time_ns = time.time_ns
_perf_ns = time.perf_counter_ns


def anchor() -> int:
    """``wall - monotonic`` in nanoseconds, from the tightest of a few paired readings."""
    best_gap, offset = None, 0
    for _ in range(3):
        before = _time_ns()
        mono = _perf_ns()
        after = _time_ns()
        gap = after - before
        if best_gap is None or gap < best_gap:
            best_gap, offset = gap, (before + after) // 2 - mono
    return offset


def drifted(offset: int) -> bool:
    """Whether wall time has moved more than :data:`MAX_DRIFT_NS` away from ``offset``."""
    return abs(_time_ns() - _perf_ns() - offset) > MAX_DRIFT_NS
