"""A traced call with a big argument next to the same call with a 100-byte one (issue #11).

Run with ``python -m pytest benchmarks/test_capture_cost.py -q``. Nothing here asserts on
timing; ``python benchmarks/capture_cost.py`` prints the table with the targets (at most
50 µs over the 100-byte call, and a 10x larger argument at most 1.2x the cost).

``@traced_execution def f(x): return len(x)`` with default settings, once per group (one group
per kind of argument): ``100B`` (the same kind of value, about 100 bytes), ``1x`` (the size of
the issue's table: ``bytearray(10_000_000)``, ``bytes(10_000_000)``, ``list(range(1_000_000))``,
``{str(i): i for i in range(100_000)}``, ``"x" * 10_000_000``, a numpy array of 10M floats, a
pandas DataFrame of 1M rows) and ``10x``. The numpy and pandas groups are skipped where those
are not installed (the ``bench`` extra installs them). Each value is built for its own
benchmark and dropped after it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from capture_cost import ARGUMENTS, SIZES, Argument, traced_len
from execlog._config import Config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LIMIT = Config().max_payload_bytes  # the default, 64 KiB


@pytest.fixture(scope="module")
def traced(execlog_db: str) -> Callable[[Any], int]:
    """``f(x) -> len(x)`` under ``@traced_execution`` with default settings."""
    return traced_len()


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[tuple[Argument, str, Any]]:
    """``(argument, size, value)``: the argument at one size, built for this benchmark."""
    argument, size = request.param
    if not argument.available():
        pytest.skip(f"{argument.needs} not installed (install the bench extra)")
    built = argument.build(size)
    yield argument, size, built
    del built


def _stored_inputs(db: str, name: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT inputs FROM executions WHERE name = ? ORDER BY started_at DESC LIMIT 1",
            (name,),
        ).fetchone()
    finally:
        conn.close()
    return json.loads(row[0])


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((a, size), id=f"{a.key}-{size}", marks=pytest.mark.benchmark(group=a.key))
        for a in ARGUMENTS
        for size in SIZES
    ],
    indirect=True,
)
def test_capture(benchmark, recording, traced, case):
    argument, size, value = case
    benchmark.extra_info["argument"] = argument.label
    assert benchmark(traced, value) == len(value)
    assert execlog.flush(timeout=60.0)
    # What was stored: within the limit, the inputs themselves or their truncation marker
    # (whose preview is the beginning of the inputs' JSON).
    stored = _stored_inputs(recording, traced.__qualname__)
    assert len(json.dumps(stored, separators=(",", ":")).encode()) <= LIMIT
    if size == "100B" or "truncated" not in stored:  # a DataFrame is stored as its summary
        assert list(stored) == ["x"]
    else:
        assert stored["truncated"] is True
        assert stored["preview"].startswith('{"x":')
