"""Fixtures for the overhead benchmarks: a temporary database, an OpenTelemetry tracer, and a
fresh execlog recorder per benchmark module.

Nothing here asserts on timing. A benchmark whose round covers several calls or executions
sets ``benchmark.extra_info["divide_by"]`` (and ``"unit"``); a per-unit summary of those is
printed at the end of the run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Measure what a user gets: no inherited lineage, recording on, internal errors not re-raised.
for _name in ("EXECLOG_DISABLED", "EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID", "EXECLOG_STRICT"):
    os.environ.pop(_name, None)

# tests/pgcluster.py starts the throw-away PostgreSQL server the PostgreSQL benchmarks use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import execlog  # noqa: E402 - after the environment is cleaned
from execlog._recorder import RECORDER  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Tracer

#: Large enough that a benchmark never waits for the writer (rows are also flushed after
#: every benchmark, so the backlog never exceeds one benchmark's calls).
QUEUE_SIZE = 5_000_000

_PER_UNIT: list[tuple[str, str, float, float, int, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _fresh_recorder() -> Iterator[None]:
    """Each benchmark module starts and ends with a stopped writer and default settings."""
    RECORDER.reset()
    yield
    execlog.flush(timeout=60.0)
    execlog.shutdown()
    RECORDER.reset()


@pytest.fixture(scope="module")
def execlog_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary SQLite file that execlog records into, with the writer already running."""
    path = str(tmp_path_factory.mktemp("execlog") / "bench.db")
    execlog.configure(db=path, queue_size=QUEUE_SIZE, enabled=True)

    @execlog.traced_execution(name="warmup")
    def warmup() -> None:
        return None

    warmup()  # creates the schema and starts the writer outside the timed rounds
    assert execlog.flush(timeout=30.0)
    yield path
    execlog.flush(timeout=60.0)
    execlog.shutdown()


@pytest.fixture
def recording(execlog_db: str) -> Iterator[str]:
    """Recording on for one benchmark; everything it recorded is committed afterwards."""
    execlog.configure(enabled=True)
    yield execlog_db
    execlog.flush(timeout=60.0)


@pytest.fixture
def disabled(execlog_db: str) -> Iterator[None]:
    """``configure(enabled=False)`` for one benchmark."""
    execlog.configure(enabled=False)
    yield
    execlog.configure(enabled=True)


class DiscardingExporter:
    """A span exporter that drops everything (measures the SDK, not an exporter)."""

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@pytest.fixture(scope="module")
def otel_provider() -> Iterator[TracerProvider]:
    """An SDK ``TracerProvider`` with a ``BatchSpanProcessor`` feeding a discarding exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    yield provider
    provider.shutdown()


@pytest.fixture(scope="module")
def otel_tracer(otel_provider: TracerProvider) -> Tracer:
    """A tracer of :func:`otel_provider` (the global provider is left alone)."""
    return otel_provider.get_tracer("execlog-benchmarks")


@pytest.fixture
def otel(otel_provider: TracerProvider, otel_tracer: Tracer) -> Iterator[Tracer]:
    """The tracer for one benchmark; its spans are exported (discarded) afterwards."""
    yield otel_tracer
    otel_provider.force_flush()


@pytest.fixture(autouse=True)
def _per_unit_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect per-unit medians of benchmarks whose round covers several calls."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    bench = request.getfixturevalue("benchmark")  # set up now, so torn down after this
    yield
    count = int(bench.extra_info.get("divide_by", 1))
    if count <= 1 or not bench.stats:
        return
    stats = bench.stats.stats
    _PER_UNIT.append(
        (
            bench.group or "",
            request.node.name,
            stats.median / count * 1e9,
            stats.min / count * 1e9,
            count,
            str(bench.extra_info.get("unit", "call")),
        )
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print per-unit times of the batched benchmarks (pytest-benchmark shows per round)."""
    if not _PER_UNIT:
        return
    tr = terminalreporter
    tr.section("per call / per execution (round time divided by what one round covers)")
    tr.write_line(f"{'group':<8} {'benchmark':<30} {'median ns':>10} {'min ns':>10}  per")
    for group, name, median, minimum, count, unit in sorted(_PER_UNIT):
        tr.write_line(
            f"{group:<8} {name:<30} {median:>10.0f} {minimum:>10.0f}  1/{count} round ({unit})"
        )
