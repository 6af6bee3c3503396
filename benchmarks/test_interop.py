"""Cost of an event, of a log record turned into an event, and of exporting a span (#14).

Next to a traced call (``test_traced_call``, the same as ``test_overhead.py``'s sync case):

- ``test_event``: one ``execlog.event(...)`` with two attributes, inside an execution (what a
  user's code pays, on its own thread);
- ``test_log_record``: one ``log.info(...)`` reaching ``ExecutionLogHandler``, beside
  ``test_log_record_discarded``, the same call reaching a handler that does nothing;
- ``test_export_span``: what the writer thread pays per execution with
  ``configure(export=[OpenTelemetryExporter(...)])``: decoding the committed row, mapping it to
  a ``ReadableSpan`` and queueing it (the span exporter here discards, as in test_overhead);
- ``test_traced_call_exported``: a traced call while export is on (the program's side: the
  same as without, export happens on the writer thread).

Nothing here asserts on timing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

import execlog
import execlog.logging
from conftest import DiscardingExporter

if TYPE_CHECKING:
    from collections.abc import Iterator

ROWS = 200  # executions per round in test_export_span


@execlog.traced_execution(name="f")
def traced_f(a, b=2):
    return a + b


@pytest.fixture
def inside(recording: str) -> Iterator[None]:
    """An open execution for the benchmark's events to land on."""
    with execlog.execution("host"):
        yield


@pytest.mark.benchmark(group="interop")
def test_traced_call(benchmark, recording):
    assert benchmark(traced_f, 1) == 3


@pytest.mark.benchmark(group="interop")
def test_event(benchmark, inside):
    benchmark(execlog.event, "rows loaded", rows=120, source="s3")


@pytest.mark.benchmark(group="interop")
def test_log_record(benchmark, inside):
    log = logging.getLogger("bench.interop")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = execlog.logging.ExecutionLogHandler()
    log.addHandler(handler)
    try:
        benchmark(log.info, "rows loaded: %d", 120)
    finally:
        log.removeHandler(handler)


class _Discard(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        return None


@pytest.mark.benchmark(group="interop")
def test_log_record_discarded(benchmark, inside):
    """logging's own cost for the same call: a handler that does nothing with the record."""
    log = logging.getLogger("bench.interop.discard")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = _Discard()
    log.addHandler(handler)
    try:
        benchmark(log.info, "rows loaded: %d", 120)
    finally:
        log.removeHandler(handler)


@pytest.fixture
def exporting(recording: str) -> Iterator[Any]:
    """``configure(export=[OpenTelemetryExporter(discarding exporter)])`` for one benchmark."""
    from execlog.otel import OpenTelemetryExporter

    exporter = OpenTelemetryExporter(DiscardingExporter(), max_queue_size=10_000_000)
    execlog.configure(export=[exporter])
    yield exporter
    execlog.flush(timeout=60.0)
    execlog.configure(export=None)
    exporter.shutdown(timeout=10)


@pytest.mark.benchmark(group="interop")
def test_traced_call_exported(benchmark, exporting):
    assert benchmark(traced_f, 1) == 3


@pytest.mark.benchmark(group="interop")
def test_export_span(benchmark, exporting, execlog_db):
    from execlog._export import Exports

    for _ in range(ROWS):
        traced_f(1)
    assert execlog.flush(timeout=30.0)
    with execlog.open_store(execlog_db) as store:
        executions = store.list(name="f", limit=ROWS)
    rows = [
        (
            e.execution_id,
            e.name,
            e.kind,
            e.status,
            int(e.started_at.timestamp() * 1e6),
            int(e.ended_at.timestamp() * 1e6),
            e.duration_ms,
            '{"a":1,"b":2}',
            "3",
            None,
            None,
            None,
            e.parent_execution_id,
            e.correlation_id,
            e.trigger_kind,
            e.run_id,
            None,
            e.pid,
            e.thread_id,
            e.host,
        )
        for e in executions
    ]
    hook = Exports((exporting,))
    benchmark.extra_info["divide_by"] = len(rows)
    benchmark.extra_info["unit"] = "span"
    benchmark(hook, rows, [])
