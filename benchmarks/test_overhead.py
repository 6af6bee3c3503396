"""Per-call overhead of execlog next to a bare call and to the OpenTelemetry SDK.

Run with ``python -m pytest benchmarks -q``. Nothing here asserts on timing: the numbers are
for reading (and for ``--benchmark-compare``), not for failing a build.

Every instrumented variant records the same thing: the inputs ``{"a": ..., "b": ...}`` as JSON
and the output as JSON. execlog writes them to a temporary SQLite file through its writer
thread; OpenTelemetry hands spans to a ``BatchSpanProcessor`` whose exporter discards them.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace

import execlog

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

    from opentelemetry.trace import Tracer

ASYNC_BATCH = 1_000  # awaits per round in the async benchmarks


# -- the function under test, in every variant ---------------------------------------------


def f(a, b=2):
    return a + b


@execlog.traced_execution(name="f")
def traced_f(a, b=2):
    return a + b


def otel_function(tracer: Tracer, name: str = "f", inner: Callable[..., Any] | None = None):
    """``f`` under ``@tracer.start_as_current_span``, recording the same inputs and output."""

    @tracer.start_as_current_span(name)
    def otel_f(a, b=2):
        span = trace.get_current_span()
        span.set_attribute("inputs", json.dumps({"a": a, "b": b}))
        result = a + b if inner is None else inner(a, b)
        span.set_attribute("output", json.dumps(result))
        return result

    return otel_f


@functools.wraps(f)
def wrapped_f(*args, **kwargs):
    return f(*args, **kwargs)


@execlog.traced_execution(name="f")
def disabled_f(a, b=2):  # called while configure(enabled=False) is in force
    return a + b


async def af(a, b=2):
    return a + b


@execlog.traced_execution(name="af")
async def traced_af(a, b=2):
    return a + b


def otel_async_function(tracer: Tracer):
    @tracer.start_as_current_span("af")
    async def otel_af(a, b=2):
        span = trace.get_current_span()
        span.set_attribute("inputs", json.dumps({"a": a, "b": b}))
        result = a + b
        span.set_attribute("output", json.dumps(result))
        return result

    return otel_af


def inner(a, b=2):
    return a + b


def middle(a, b=2):
    return inner(a, b)


def outer(a, b=2):
    return middle(a, b)


@execlog.traced_execution(name="inner")
def traced_inner(a, b=2):
    return a + b


@execlog.traced_execution(name="middle")
def traced_middle(a, b=2):
    return traced_inner(a, b)


@execlog.traced_execution(name="outer")
def traced_outer(a, b=2):
    return traced_middle(a, b)


# -- fixtures local to this module --------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every async benchmark."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def batch_driver(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., Coroutine[Any, Any, Any]]
) -> Callable[[], None]:
    """A sync callable that awaits ``fn(1)`` ``ASYNC_BATCH`` times inside ``loop``."""

    async def batch() -> None:
        for _ in range(ASYNC_BATCH):
            await fn(1)

    def run() -> None:
        loop.run_until_complete(batch())

    return run


def per_call(benchmark: Any, count: int, unit: str = "call") -> None:
    benchmark.extra_info["divide_by"] = count
    benchmark.extra_info["unit"] = unit


# -- sync: one call per iteration ---------------------------------------------------------


@pytest.mark.benchmark(group="sync")
def test_sync_bare(benchmark):
    assert benchmark(f, 1) == 3


@pytest.mark.benchmark(group="sync")
def test_sync_execlog_traced(benchmark, recording):
    assert benchmark(traced_f, 1) == 3


@pytest.mark.benchmark(group="sync")
def test_sync_otel_span(benchmark, otel):
    otel_f = otel_function(otel)
    assert benchmark(otel_f, 1) == 3


@pytest.mark.benchmark(group="sync")
def test_sync_execlog_execution_block(benchmark, recording):
    def block():
        with execlog.execution("f"):
            return f(1)

    assert benchmark(block) == 3


# -- async: ASYNC_BATCH awaits per round inside one event loop --------------------------------


@pytest.mark.benchmark(group="async")
def test_async_bare(benchmark, loop):
    per_call(benchmark, ASYNC_BATCH)
    benchmark(batch_driver(loop, af))


@pytest.mark.benchmark(group="async")
def test_async_execlog_traced(benchmark, loop, recording):
    per_call(benchmark, ASYNC_BATCH)
    benchmark(batch_driver(loop, traced_af))


@pytest.mark.benchmark(group="async")
def test_async_otel_span(benchmark, loop, otel):
    per_call(benchmark, ASYNC_BATCH)
    benchmark(batch_driver(loop, otel_async_function(otel)))


# -- nested: outer -> middle -> inner, three executions per call ----------------------------


@pytest.mark.benchmark(group="nested")
def test_nested_bare(benchmark):
    per_call(benchmark, 3, "level")
    assert benchmark(outer, 1) == 3


@pytest.mark.benchmark(group="nested")
def test_nested_execlog_traced(benchmark, recording):
    per_call(benchmark, 3, "execution")
    assert benchmark(traced_outer, 1) == 3


@pytest.mark.benchmark(group="nested")
def test_nested_otel_span(benchmark, otel):
    per_call(benchmark, 3, "span")
    otel_inner = otel_function(otel, "inner")
    otel_middle = otel_function(otel, "middle", otel_inner)
    otel_outer = otel_function(otel, "outer", otel_middle)
    assert benchmark(otel_outer, 1) == 3


# -- disabled: configure(enabled=False) next to the cheapest possible wrapper ---------------


@pytest.mark.benchmark(group="disabled")
def test_disabled_bare(benchmark):
    assert benchmark(f, 1) == 3


@pytest.mark.benchmark(group="disabled")
def test_disabled_functools_wraps(benchmark):
    assert benchmark(wrapped_f, 1) == 3


@pytest.mark.benchmark(group="disabled")
def test_disabled_execlog_traced(benchmark, disabled):
    assert benchmark(disabled_f, 1) == 3


# -- head sampling: an unsampled call next to the disabled path (the target: at most 2x) ---


@execlog.traced_execution(name="f", sample_rate=0.0)
def unsampled_f(a, b=2):  # a root that is never recorded
    return a + b


@execlog.traced_execution(name="tree", sample_rate=0.0)
def unsampled_tree(run):  # calls inside it run in an unsampled tree
    return run()


@pytest.mark.benchmark(group="disabled")
def test_unsampled_root(benchmark, recording):
    # warmed up: a first call that takes microseconds (the first root, a context made)
    # would make pytest-benchmark calibrate to 1 call per round, measuring its own timer
    unsampled_f(1)
    assert benchmark(unsampled_f, 1) == 3


@pytest.mark.benchmark(group="disabled")
def test_unsampled_call_inside_a_tree(benchmark, recording):
    assert unsampled_tree(lambda: benchmark(traced_f, 1)) == 3


@execlog.traced_execution(name="af", sample_rate=0.0)
async def unsampled_af(a, b=2):  # an async def root that is never recorded
    return a + b


@pytest.mark.benchmark(group="disabled-async")
def test_disabled_async_execlog_traced(benchmark, loop, disabled):
    per_call(benchmark, ASYNC_BATCH)
    benchmark(batch_driver(loop, traced_af))


@pytest.mark.benchmark(group="disabled-async")
def test_unsampled_async_root(benchmark, loop, recording):
    per_call(benchmark, ASYNC_BATCH)
    benchmark(batch_driver(loop, unsampled_af))
