"""execlog next to a bare call, OpenTelemetry and a floor of unavoidable work, in one run.

Usage::

    python benchmarks/compare.py               # 15 interleaved rounds, 200,000-row throughput
    python benchmarks/compare.py --quick       # smoke run: 3 rounds, 20,000 rows
    python benchmarks/compare.py --json out.json

Every scenario is timed for N calls with ``time.perf_counter_ns`` in every round; the rounds
interleave the scenarios (groups in a shuffled order per round, and the scenarios of a group,
such as execlog and OpenTelemetry on the same function, one after the other in a shuffled
order) so that drifts of a shared or throttled machine hit all of them alike, and the median
over rounds is reported, with the median of the per-round OpenTelemetry/execlog ratios. N is
calibrated per scenario so that one measurement takes about ``--target-ms``.

The instrumented variants record the same thing: inputs ``{"a": 1, "b": 2}`` and the output as
JSON. execlog writes to a temporary SQLite file through its writer thread (flushed after every
measurement, outside the timed region); OpenTelemetry uses the SDK's ``TracerProvider`` and
``BatchSpanProcessor`` with an exporter that discards spans (force-flushed likewise).

The floor is the sum of the parts any recorder of this kind cannot avoid, each measured on
its own (loop overhead subtracted): a ``ContextVar`` set/reset, two ``perf_counter_ns()``, one
``time_ns()``, one id from ``execlog._ids.new_id``, two ``orjson.dumps`` (inputs and output),
one ``deque.append``, plus one call through a plain ``functools.wraps`` wrapper (which also
contains the bare call and one loop iteration, as every timed scenario does).

After the throughput part: concurrency (1, 2, 4 threads, rows/s up to ``flush()``), memory
(bytes per queued record, a burst against a locked database and a leak check, the latter two
in subprocesses) and the disabled paths; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextvars
import functools
import gc
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

import execlog
from call_shapes import (
    SHAPES,
    VARIANTS,
    Shape,
    Targets,
    bare_targets,
    execlog_targets,
    loop_of,
    otel_targets,
    recorded_inputs,
    stand_in,
)
from execlog import _config as execlog_config
from execlog import _fastpath as execlog_fastpath
from execlog._ids import new_id
from execlog._recorder import RECORDER
from execlog._storage import COLUMNS
from execlog._storage import sqlite as execlog_sqlite

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from opentelemetry.sdk.trace import ReadableSpan

QUEUE_SIZE = 5_000_000  # never reached: nothing in this script waits on a full queue
BATCH_SIZE = 512  # execlog's default, also used for the batched bare-SQLite variant

perf_ns = time.perf_counter_ns  # --clock thread: time.thread_time_ns during the rounds
CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}


# -- the function under test ---------------------------------------------------------------


def f(a, b=2):
    return a + b


async def af(a, b=2):
    return a + b


def inner(a, b=2):
    return a + b


def middle(a, b=2):
    return inner(a, b)


def outer(a, b=2):
    return middle(a, b)


@functools.wraps(f)
def wrapped_f(*args, **kwargs):
    return f(*args, **kwargs)


class DiscardingExporter:
    """Drops every span: measures the SDK, not an exporter."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def otel_function(tracer: Any, name: str = "f", inner_fn: Callable[..., Any] | None = None):
    @tracer.start_as_current_span(name)
    def otel_f(a, b=2):
        span = trace.get_current_span()
        span.set_attribute("inputs", json.dumps({"a": a, "b": b}))
        result = a + b if inner_fn is None else inner_fn(a, b)
        span.set_attribute("output", json.dumps(result))
        return result

    return otel_f


def otel_async_function(tracer: Any):
    @tracer.start_as_current_span("af")
    async def otel_af(a, b=2):
        span = trace.get_current_span()
        span.set_attribute("inputs", json.dumps({"a": a, "b": b}))
        result = a + b
        span.set_attribute("output", json.dumps(result))
        return result

    return otel_af


# -- timers: each runs its body n times and returns the elapsed ns ----------------------------


def call_timer(fn: Callable[..., Any]) -> Callable[[int], int]:
    def timer(n: int) -> int:
        call = fn
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            call(1)
        return perf_ns() - t0

    return timer


def block_timer(fn: Callable[..., Any], **options: Any) -> Callable[[int], int]:
    def timer(n: int) -> int:
        call = fn
        execution = execlog.execution
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            with execution("f", **options):
                call(1)
        return perf_ns() - t0

    return timer


def async_timer(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any]) -> Callable[[int], int]:
    async def batch(n: int) -> None:
        call = fn
        for _ in range(n):
            await call(1)

    def timer(n: int) -> int:
        t0 = perf_ns()
        loop.run_until_complete(batch(n))
        return perf_ns() - t0

    return timer


def floor_timers() -> dict[str, tuple[str, Callable[[int], int], Callable[[], None] | None]]:
    """The unavoidable parts, each in the same loop form as the scenarios."""
    var: contextvars.ContextVar[object] = contextvars.ContextVar("bench", default=None)
    marker = object()
    ts = time.time_ns()
    inputs = {"a": 1, "b": 2}
    output = 3
    sink: collections.deque[tuple[Any, ...]] = collections.deque()
    row = tuple(range(len(COLUMNS)))

    def empty(n: int) -> int:
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            pass
        return perf_ns() - t0

    def contextvar(n: int) -> int:
        set_, reset = var.set, var.reset
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            reset(set_(marker))
        return perf_ns() - t0

    def perf_counter_x2(n: int) -> int:
        pc = time.perf_counter_ns
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            pc()
            pc()
        return perf_ns() - t0

    def time_ns(n: int) -> int:
        tn = time.time_ns
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            tn()
        return perf_ns() - t0

    def ids(n: int) -> int:
        nid = new_id
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            nid(ts)
        return perf_ns() - t0

    def dumps_x2(n: int) -> int:
        dumps = orjson.dumps
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            dumps(inputs)
            dumps(output)
        return perf_ns() - t0

    def append(n: int) -> int:
        app = sink.append
        rng = range(n)
        t0 = perf_ns()
        for _ in rng:
            app(row)
        return perf_ns() - t0

    return {
        "empty_loop": ("empty loop iteration (subtracted)", empty, None),
        "contextvar": ("ContextVar set + reset", contextvar, None),
        "perf_counter_x2": ("2 x time.perf_counter_ns()", perf_counter_x2, None),
        "time_ns": ("1 x time.time_ns()", time_ns, None),
        "new_id": ("execlog._ids.new_id(ts)", ids, None),
        "orjson_x2": ("2 x orjson.dumps (inputs, output)", dumps_x2, None),
        "deque_append": ("1 x deque.append(row)", append, sink.clear),
        "wraps_call": (
            "functools.wraps wrapper call (incl. bare call + loop)",
            call_timer(wrapped_f),
            None,
        ),
    }


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    label: str
    group: str
    timer: Callable[[int], int]
    per: int = 1  # units (calls, executions) per loop iteration
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    n: int = 0
    samples: list[float] = field(default_factory=list)  # ns per unit, one per round

    def measure(self, n: int) -> int:
        if self.before is not None:
            self.before()
        try:
            return self.timer(n)
        finally:
            if self.after is not None:
                self.after()

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def calibrate(scenario: Scenario, target_ns: int) -> int:
    n = 1
    while True:
        elapsed = scenario.measure(n)
        if elapsed >= target_ns / 10 or n >= 10_000_000:
            return max(1, min(int(n * target_ns / max(elapsed, 1)), 20_000_000))
        n *= 10


def flush_execlog() -> None:
    if not execlog.flush(timeout=120.0):
        print("warning: execlog.flush() returned False", file=sys.stderr)


def build_scenarios(
    loop: asyncio.AbstractEventLoop, provider: TracerProvider, shapes: dict[str, Targets]
) -> list[Scenario]:
    tracer = provider.get_tracer("execlog-compare")

    @execlog.traced_execution(name="f")
    def traced_f(a, b=2):
        return a + b

    @execlog.traced_execution(name="af")
    async def traced_af(a, b=2):
        return a + b

    @execlog.traced_execution(name="inner")
    def traced_inner(a, b=2):
        return a + b

    @execlog.traced_execution(name="middle")
    def traced_middle(a, b=2):
        return traced_inner(a, b)

    @execlog.traced_execution(name="outer")
    def traced_outer(a, b=2):
        return traced_middle(a, b)

    @execlog.traced_execution(name="f")
    def disabled_f(a, b=2):
        return a + b

    # Head sampling: a root that is never recorded, and calls inside such a tree.
    @execlog.traced_execution(name="f", sample_rate=0.0)
    def unsampled_f(a, b=2):
        return a + b

    @execlog.traced_execution(name="af")
    async def disabled_af(a, b=2):
        return a + b

    @execlog.traced_execution(name="af", sample_rate=0.0)
    async def unsampled_af(a, b=2):
        return a + b

    plain_timer = call_timer(traced_f)

    @execlog.traced_execution(name="unsampled-root", sample_rate=0.0)
    def inside_unsampled(n: int) -> int:
        return plain_timer(n)

    plain_block_timer = block_timer(f)

    @execlog.traced_execution(name="unsampled-root", sample_rate=0.0)
    def block_inside_unsampled(n: int) -> int:
        return plain_block_timer(n)

    # The same, decorated as where the C accelerator is not built (or EXECLOG_PURE_PYTHON=1).
    native = execlog_fastpath.READY
    execlog_fastpath.READY = False
    try:

        @execlog.traced_execution(name="f")
        def traced_f_py(a, b=2):
            return a + b

        @execlog.traced_execution(name="f", sample_rate=0.0)
        def unsampled_f_py(a, b=2):
            return a + b

        @execlog.traced_execution(name="f")
        def disabled_f_py(a, b=2):
            return a + b

    finally:
        execlog_fastpath.READY = native

    def pure_blocks() -> None:
        execlog_fastpath.native_blocks(on=False)

    def native_blocks() -> None:
        execlog_fastpath.native_blocks(on=True)
        flush_execlog()

    otel_inner = otel_function(tracer, "inner")
    otel_middle = otel_function(tracer, "middle", otel_inner)
    otel_outer = otel_function(tracer, "outer", otel_middle)

    def otel_flush() -> None:
        provider.force_flush()

    def disable() -> None:
        execlog.configure(enabled=False)

    def enable() -> None:
        execlog.configure(enabled=True)

    s = Scenario
    scenarios = [
        s("bare", "bare call f(1)", "sync", call_timer(f)),
        s("traced", "@traced_execution f(1)", "sync", call_timer(traced_f), after=flush_execlog),
        s(
            "otel",
            "OTel start_as_current_span f(1)",
            "sync",
            call_timer(otel_function(tracer)),
            after=otel_flush,
        ),
        s("block", 'with execution("f"): f(1)', "sync", block_timer(f), after=flush_execlog),
        s(
            "traced_py",
            "@traced_execution f(1), pure Python",
            "sync",
            call_timer(traced_f_py),
            after=flush_execlog,
        ),
        s(
            "block_py",
            "with execution, pure Python",
            "sync",
            block_timer(f),
            before=pure_blocks,
            after=native_blocks,
        ),
        s("async_bare", "await af(1)", "async", async_timer(loop, af)),
        s(
            "async_traced",
            "await traced af(1)",
            "async",
            async_timer(loop, traced_af),
            after=flush_execlog,
        ),
        s(
            "async_otel",
            "await OTel af(1)",
            "async",
            async_timer(loop, otel_async_function(tracer)),
            after=otel_flush,
        ),
        s("nested_bare", "3-level bare, per level", "nested", call_timer(outer), per=3),
        s(
            "nested_traced",
            "3-level traced, per execution",
            "nested",
            call_timer(traced_outer),
            per=3,
            after=flush_execlog,
        ),
        s(
            "nested_otel",
            "3-level OTel, per span",
            "nested",
            call_timer(otel_outer),
            per=3,
            after=otel_flush,
        ),
        s(
            "disabled",
            "traced, configure(enabled=False)",
            "disabled",
            call_timer(disabled_f),
            before=disable,
            after=enable,
        ),
        s(
            "disabled_py",
            "traced, configure(enabled=False), pure Python",
            "disabled",
            call_timer(disabled_f_py),
            before=disable,
            after=enable,
        ),
        s("unsampled_root", "unsampled root f(1)", "disabled", call_timer(unsampled_f)),
        s(
            "unsampled_child",
            "traced f(1) in an unsampled tree",
            "disabled",
            inside_unsampled,
        ),
        s(
            "unsampled_root_py",
            "unsampled root f(1), pure Python",
            "disabled",
            call_timer(unsampled_f_py),
        ),
        s(
            "disabled_async",
            "await traced af(1), configure(enabled=False)",
            "disabled",
            async_timer(loop, disabled_af),
            before=disable,
            after=enable,
        ),
        s(
            "unsampled_root_async",
            "unsampled root await af(1)",
            "disabled",
            async_timer(loop, unsampled_af),
        ),
        s(
            "disabled_block",
            'with execution("f"): f(1), configure(enabled=False)',
            "disabled",
            block_timer(f),
            before=disable,
            after=enable,
        ),
        s(
            "unsampled_root_block",
            'unsampled root with execution("f", sample_rate=0.0): f(1)',
            "disabled",
            block_timer(f, sample_rate=0.0),
        ),
        s(
            "unsampled_child_block",
            'with execution("f"): f(1) in an unsampled tree',
            "disabled",
            block_inside_unsampled,
        ),
    ]
    for key, (label, timer, after) in floor_timers().items():
        scenarios.append(s(f"floor:{key}", label, "floor", timer, after=after))
    # Call shapes: one group per shape (bare, execlog and OTel measured one after the other);
    # the positional shapes are the sync and async groups' f(1) and af(1) above.
    flush_after = {"bare": None, "execlog": flush_execlog, "otel": otel_flush}
    scenarios.extend(
        s(
            shape_key(shape, variant),
            f"{variant} {shape.label} ({shape.kind})",
            f"shape:{shape.key}",
            loop_of(shape, shapes[variant].of(shape), loop, clock=perf_ns),
            after=flush_after[variant],
        )
        for shape in SHAPES
        if shape.key not in POSITIONAL_KEYS
        for variant in VARIANTS
    )
    return scenarios


#: The shape table's positional rows are these scenarios of the sync and async groups.
POSITIONAL_KEYS = {
    "positional": {"bare": "bare", "execlog": "traced", "otel": "otel"},
    "async_positional": {"bare": "async_bare", "execlog": "async_traced", "otel": "async_otel"},
}


def shape_key(shape: Shape, variant: str) -> str:
    positional = POSITIONAL_KEYS.get(shape.key)
    return positional[variant] if positional else f"shape:{shape.key}:{variant}"


def shape_targets(provider: TracerProvider) -> dict[str, Targets]:
    return {
        "bare": bare_targets(),
        "execlog": execlog_targets(),
        "otel": otel_targets(provider.get_tracer("execlog-compare")),
    }


def check_shapes(
    targets: Targets, loop: asyncio.AbstractEventLoop, db: str
) -> dict[str, dict[str, Any]]:
    """What execlog recorded for one call of each shape, against what API.md says it records."""
    out = {}
    for shape in SHAPES:
        recorded = recorded_inputs(shape, targets.of(shape), loop, db)
        out[shape.key] = {
            "expected": shape.inputs,
            "recorded": recorded,
            "ok": recorded == shape.inputs,
            "stand_in": stand_in(shape, targets.of(shape)),
        }
    return out


def run_rounds(scenarios: list[Scenario], rounds: int, target_ms: float, seed: int) -> None:
    target_ns = int(target_ms * 1e6)
    for scenario in scenarios:
        scenario.measure(max(1, 200 // scenario.per))  # warm up
        scenario.n = calibrate(scenario, target_ns)
    rng = random.Random(seed)
    # Each round measures the groups (sync, async, nested, ...) in a random order, and each
    # group's scenarios one after the other in a random order: what is compared (execlog and
    # OpenTelemetry on the same function) is measured close together in time, so that a burst
    # of other work on the machine tends to hit both sides of a per-round ratio.
    groups: dict[str, list[Scenario]] = {}
    for scenario in scenarios:
        groups.setdefault(scenario.group, []).append(scenario)
    order = list(groups.values())
    for index in range(rounds):
        rng.shuffle(order)
        for group in order:
            rng.shuffle(group)
            for scenario in group:
                elapsed = scenario.measure(scenario.n)
                scenario.samples.append(elapsed / (scenario.n * scenario.per))
        print(f"  round {index + 1}/{rounds} done", file=sys.stderr)


# -- end-to-end throughput -----------------------------------------------------------------


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # what execlog's writer uses
    return conn


def _fresh_schema(path: str) -> None:
    """Let execlog create the database (schema, indexes, pragmas), with no rows in it."""
    backend = execlog_sqlite.SQLiteBackend(path)
    backend.close()


def warm_traced(name: str) -> Callable[..., Any]:
    """``f(a, b=2)`` traced as ``name``, once the schema exists and the writer is running."""

    @execlog.traced_execution(name="warmup")
    def warmup(a):
        return a

    @execlog.traced_execution(name=name)
    def traced(a, b=2):
        return a + b

    warmup(0)  # schema created and writer running before the clock starts
    flush_execlog()
    return traced


def throughput(rows: int, workdir: Path) -> dict[str, Any]:
    db = str(workdir / "throughput-execlog.db")
    execlog.configure(db=db, enabled=True)  # flushes and restarts the writer on the new file
    tp = warm_traced("tp")

    t0 = perf_ns()
    for i in range(rows):
        tp(i)
    t_calls = perf_ns() - t0
    ok = execlog.flush(timeout=600.0)
    t_total = perf_ns() - t0

    conn = sqlite3.connect(db)
    count = conn.execute("SELECT COUNT(*) FROM executions WHERE name = 'tp'").fetchone()[0]
    recorded = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM executions WHERE name = 'tp' "
        "ORDER BY started_at, execution_id"
    ).fetchall()
    conn.close()
    json_cols = [i for i, c in enumerate(COLUMNS) if c in {"inputs", "output", "tags"}]
    same_rows = [
        tuple(v.encode() if i in json_cols and isinstance(v, str) else v for i, v in enumerate(r))
        for r in recorded
    ]  # JSON columns as bytes, as execlog's writer binds them

    statement = getattr(execlog_sqlite, "UPSERT", None) or (
        f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    )

    def bare_sqlite(path: str, batch: int) -> tuple[int, int]:
        _fresh_schema(path)
        conn = _sqlite_connect(path)
        try:
            t = perf_ns()
            for start in range(0, len(same_rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(statement, same_rows[start : start + batch])
                conn.execute("COMMIT")
            elapsed = perf_ns() - t
            written = conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        finally:
            conn.close()
        return elapsed, written

    t_one, written_one = bare_sqlite(str(workdir / "throughput-sqlite-1tx.db"), len(same_rows))
    t_batched, written_batched = bare_sqlite(
        str(workdir / "throughput-sqlite-batched.db"), BATCH_SIZE
    )
    return {
        "rows": rows,
        "flush_ok": ok,
        "rows_committed": count,
        "execlog_calls_ns": t_calls,
        "execlog_total_ns": t_total,
        "sqlite_one_tx_ns": t_one,
        "sqlite_one_tx_rows": written_one,
        "sqlite_batched_ns": t_batched,
        "sqlite_batched_rows": written_batched,
        "statement": "UPSERT" if statement is getattr(execlog_sqlite, "UPSERT", None) else "INSERT",
    }


# -- concurrency, memory, disabled ---------------------------------------------------------

DEFAULTS = execlog_config.Config()  # queue_size=100_000, on_full="block", batch_size=512, ...


def _default_config(db: str, **overrides: Any) -> None:
    """Record into ``db`` with execlog's default settings (restarts the writer on a new file)."""
    options = {
        "db": db,
        "batch_size": DEFAULTS.batch_size,
        "flush_interval": DEFAULTS.flush_interval,
        "queue_size": DEFAULTS.queue_size,
        "on_full": DEFAULTS.on_full,
        "enabled": True,
    }
    options.update(overrides)
    execlog.configure(**options)


def _committed(db: str, name: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM executions WHERE name = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


def threaded_run(db: str, threads: int, per_thread: int) -> dict[str, Any]:
    """``threads`` threads each make ``per_thread`` traced calls; timed up to ``flush()``."""
    _default_config(db)
    traced_f = warm_traced("f")
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        call = traced_f
        barrier.wait()
        for i in range(per_thread):
            call(i)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    t0 = perf_ns()
    for worker in workers:
        worker.join()
    ok = execlog.flush(timeout=600.0)
    elapsed = perf_ns() - t0
    rows = threads * per_thread
    return {
        "threads": threads,
        "rows": rows,
        "ns": elapsed,
        "rows_per_s": rows / (elapsed / 1e9),
        "flush_ok": ok,
        "rows_committed": _committed(db, "f"),
    }


def sustained(seconds: float, workdir: Path) -> dict[str, Any]:
    """One thread calls a traced ``f`` flat out for ``seconds`` (default config): the rate it
    keeps up and the rows the writer commits meanwhile, while both want the GIL."""
    db = str(workdir / "sustained.db")
    _default_config(db)
    traced_f = warm_traced("f")
    before = _committed(db, "f")
    calls = 0
    t0 = perf_ns()
    deadline = t0 + int(seconds * 1e9)
    while perf_ns() < deadline:
        for i in range(1000):
            traced_f(i)
        calls += 1000
    elapsed = (perf_ns() - t0) / 1e9
    committed = _committed(db, "f") - before
    queued = len(RECORDER.channel.queue)
    flush_ok = execlog.flush(timeout=600.0)
    return {
        "seconds": elapsed,
        "calls": calls,
        "calls_per_s": calls / elapsed,
        "committed_during": committed,
        "committed_per_s": committed / elapsed,
        "queued_at_end": queued,
        "flush_ok": flush_ok,
        "config": {"queue_size": DEFAULTS.queue_size, "on_full": DEFAULTS.on_full},
    }


def concurrency(per_thread: int, reps: int, workdir: Path) -> dict[str, Any]:
    counts = (1, 2, 4)
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    for rep in range(reps):
        for n in counts if rep % 2 == 0 else reversed(counts):  # alternate the order
            db = str(workdir / f"concurrency-{n}-{rep}.db")  # a fresh database each time
            runs[n].append(threaded_run(db, n, per_thread))
    result = {
        "per_thread_calls": per_thread,
        "reps": reps,
        "config": {"queue_size": DEFAULTS.queue_size, "batch_size": DEFAULTS.batch_size},
        "by_threads": {
            str(n): {
                "rows_per_s_median": statistics.median(r["rows_per_s"] for r in rs),
                "runs": rs,
            }
            for n, rs in runs.items()
        },
    }
    one = result["by_threads"]["1"]["rows_per_s_median"]
    result["ratio_4_over_1"] = result["by_threads"]["4"]["rows_per_s_median"] / one
    result["ratio_2_over_1"] = result["by_threads"]["2"]["rows_per_s_median"] / one
    return result


def bytes_per_record(calls: int, workdir: Path) -> dict[str, Any]:
    """tracemalloc growth per record while the writer sleeps (nothing is drained)."""
    # The writer wakes at batch_size queued records or every flush_interval: neither happens.
    _default_config(
        str(workdir / "memory.db"),
        batch_size=10**9,
        flush_interval=1e6,
        queue_size=max(DEFAULTS.queue_size, calls * 2),
    )

    @execlog.traced_execution(name="f")
    def traced_f(a, b=2):
        return a + b

    for i in range(100):  # writer started, caches warm
        traced_f(i)
    queue = RECORDER.channel.queue
    queued_before = len(queue)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(calls):
            traced_f(i)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    queued = len(queue) - queued_before
    _default_config(str(workdir / "memory.db"))  # back to defaults: flushes and restarts
    flush_execlog()
    return {
        "calls": calls,
        "queued": queued,
        "bytes": after - before,
        "bytes_per_record": (after - before) / max(queued, 1),
    }


# Run in a fresh interpreter (sys.argv: db, calls): peak RSS of a burst against a locked db.
BURST_CHILD = r"""
import json, os, resource, sqlite3, sys
import execlog
from execlog._recorder import RECORDER

db, calls = sys.argv[1], int(sys.argv[2])
execlog.configure(db=db, on_full="drop")  # default queue_size (100,000)

@execlog.traced_execution(name="f")
def f(a, b=2):
    return a + b

f(0)
assert execlog.flush(timeout=30)
lock = sqlite3.connect(db, isolation_level=None, timeout=30)
lock.execute("BEGIN EXCLUSIVE")  # the writer cannot commit: every record stays in memory
channel = RECORDER.channel
queue = channel.queue
def hwm_kb():  # peak RSS of this process image (ru_maxrss also counts the parent's, see below)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm_before_kb = hwm_kb()
max_queue = max_held = 0
for i in range(calls):
    f(i)
    n = len(queue)
    if n > max_queue:
        max_queue = n
    held = n + channel.inflight
    if held > max_held:
        max_held = held
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm_peak_kb = hwm_kb()
held_end = len(queue) + channel.inflight
committed = lock.execute("SELECT COUNT(*) FROM executions WHERE name = 'f'").fetchone()[0]
lock.execute("ROLLBACK")
print(json.dumps({
    "calls": calls,
    "queue_size": RECORDER.config.queue_size,
    "max_queue_len": max_queue,
    "max_queue_plus_inflight": max_held,
    "held_at_end": held_end,
    "committed_during_burst": committed - 1,
    "maxrss_before_kb": rss_before_kb,
    "maxrss_peak_kb": peak_kb,
    "vmhwm_before_kb": hwm_before_kb,
    "vmhwm_peak_kb": hwm_peak_kb,
}), flush=True)
os._exit(0)  # skip the exit-time flush of the records still queued
"""

# Run in a fresh interpreter (sys.argv: db, calls, bursts): RSS after each burst + flush().
LEAK_CHILD = r"""
import gc, json, os, sys
import execlog
from execlog._storage import sqlite as backend

db, calls, bursts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
execlog.configure(db=db)  # default settings
page = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page

@execlog.traced_execution(name="f")
def f(a, b=2):
    return a + b

f(0)
assert execlog.flush(timeout=30)
out = {"calls": calls, "rss_start": rss(), "rss_after_burst": [], "flush_ok": [], "sql_cached": [],
       "blocks_after_burst": []}
for _ in range(bursts):
    for i in range(calls):
        f(i)
    out["flush_ok"].append(execlog.flush(timeout=300))
    out["rss_after_burst"].append(rss())
    gc.collect()
    # Python objects alive (a reference leaked per call shows here exactly; RSS also moves
    # with SQLite's page cache and the allocator's free lists)
    out["blocks_after_burst"].append(sys.getallocatedblocks())
    # distinct multi-row INSERT statements built so far (one per batch length; bounded caches)
    out["sql_cached"].append(backend._multi_row.cache_info().currsize)
execlog.shutdown()
print(json.dumps(out), flush=True)
"""

# Run in a fresh interpreter with EXECLOG_DISABLED=1 set before execlog is imported.
ENV_DISABLED_CHILD = r"""
import json
import execlog

def f(a, b=2):
    return a + b

decorated = execlog.traced_execution(f)
named = execlog.traced_execution(name="g")(f)
print(json.dumps({"decorated_is_f": decorated is f, "named_is_f": named is f}), flush=True)
"""


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    environ = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    per_record = bytes_per_record(args.memory_calls, workdir)
    burst = _child(BURST_CHILD, str(workdir / "burst.db"), str(args.burst_calls))
    leak = _child(LEAK_CHILD, str(workdir / "leak.db"), str(args.leak_calls), "5")
    rss = leak["rss_after_burst"]
    leak["growth_burst2_to_5"] = rss[4] - rss[1]
    blocks = leak["blocks_after_burst"]
    leak["blocks_growth_burst2_to_5"] = blocks[4] - blocks[1]
    return {"per_record": per_record, "burst": burst, "leak": leak}


def env_disabled_check() -> dict[str, Any]:
    return _child(ENV_DISABLED_CHILD, env={"EXECLOG_DISABLED": "1"})


def report_scaling(
    scenarios: list[Scenario], conc: dict[str, Any], mem: dict[str, Any], env: dict[str, Any]
) -> dict[str, Any]:
    med = {s.key: s.median for s in scenarios}
    print()
    print(
        f"concurrency: threads x {conc['per_thread_calls']:,} traced calls each, until flush() "
        f"returns (default config, fresh db, median of {conc['reps']}):"
    )
    for n, entry in conc["by_threads"].items():
        runs = entry["runs"]
        committed = min(r["rows_committed"] for r in runs)
        print(
            f"  {n} thread{'s' if n != '1' else ' '}  {entry['rows_per_s_median']:>12,.0f} rows/s"
            f"  ({runs[0]['rows']:,} rows, {committed:,} committed"
            f"{'' if all(r['flush_ok'] for r in runs) else ', FLUSH FAILED'})"
        )
    print(
        f"  4 threads / 1 thread: {conc['ratio_4_over_1']:.2f}x  "
        f"(2 / 1: {conc['ratio_2_over_1']:.2f}x; the GIL bounds it near 1x: the calls are "
        "Python code, the writer shares the same interpreter)"
    )

    sus = conc["sustained"]
    print(
        f"  sustained: one thread calling traced f(1) flat out for {sus['seconds']:.1f} s "
        f"(queue_size {sus['config']['queue_size']:,}, on_full={sus['config']['on_full']!r}): "
        f"{sus['calls_per_s']:,.0f} calls/s, {sus['committed_per_s']:,.0f} rows/s committed "
        f"meanwhile, {sus['queued_at_end']:,} queued at the end"
        f"{'' if sus['flush_ok'] else ', FLUSH FAILED'}"
    )

    pr, burst, leak = mem["per_record"], mem["burst"], mem["leak"]
    print()
    print("memory:")
    print(
        f"  bytes per queued record (tracemalloc, writer asleep)   {pr['bytes_per_record']:>8.0f} B"
        f"  ({pr['queued']:,} records queued, {pr['bytes'] / 2**20:.1f} MiB)"
    )
    # Final rows of executions already written as `running` are queued beyond the bound (or
    # the execution would stay `running`); at most a few per failed write attempt.
    excess = burst["max_queue_len"] - burst["queue_size"]
    bounded_text = (
        "bounded"
        if excess <= 0
        else f"bounded + {excess} final row(s) of executions already shown as running"
        if excess <= 100
        else "EXCEEDED"
    )
    print(
        f"  burst of {burst['calls']:,} calls, on_full='drop', locked db (subprocess): "
        f"peak RSS (VmHWM) {burst['vmhwm_peak_kb'] / 1024:.1f} MiB "
        f"(before the burst {burst['vmhwm_before_kb'] / 1024:.1f} MiB)"
    )
    print(
        f"    ru_maxrss {burst['maxrss_peak_kb'] / 1024:.1f} MiB (before the burst "
        f"{burst['maxrss_before_kb'] / 1024:.1f} MiB; Linux carries the parent's peak into a "
        "child across fork + exec, so a figure equal to 'before' is this script's own peak)"
    )
    print(
        f"    max queue length {burst['max_queue_len']:,} (queue + in flight "
        f"{burst['max_queue_plus_inflight']:,}) vs queue_size {burst['queue_size']:,}: "
        f"{bounded_text}; {burst['held_at_end']:,} held at the end, "
        f"{burst['calls'] - burst['held_at_end']:,} dropped"
    )
    rss = leak["rss_after_burst"]
    print(
        f"  leak check: 5 bursts of {leak['calls']:,} calls + flush() (subprocess), RSS after "
        "each: " + ", ".join(f"{r / 2**20:.1f}" for r in rss) + " MiB"
    )
    print(
        f"    growth burst 2 -> 5: {leak['growth_burst2_to_5'] / 1024:+,.0f} KiB "
        f"({leak['growth_burst2_to_5'] / (3 * leak['calls']):+.2f} B per call); distinct "
        "multi-row INSERT statements cached after each burst: "
        + ", ".join(str(n) for n in leak["sql_cached"])
    )
    print(
        "    Python objects alive after each burst (sys.getallocatedblocks): "
        + ", ".join(f"{n:,}" for n in leak["blocks_after_burst"])
        + f"; burst 2 -> 5: {leak['blocks_growth_burst2_to_5']:+,} "
        f"({leak['blocks_growth_burst2_to_5'] / (3 * leak['calls']):+.4f} per call)"
    )

    disabled, wraps = med["disabled"], med["floor:wraps_call"]
    print()
    print("disabled:")
    print(
        f"  configure(enabled=False) call {disabled:.0f} ns vs functools.wraps wrapper "
        f"{wraps:.0f} ns: {disabled / wraps:.2f}x (medians from the table above)"
    )
    sampling = {
        "unsampled_root_over_disabled": med["unsampled_root"] / disabled,
        "unsampled_child_over_disabled": med["unsampled_child"] / disabled,
        "unsampled_root_py_over_disabled_py": med["unsampled_root_py"] / med["disabled_py"],
        "unsampled_root_async_over_disabled_async": med["unsampled_root_async"]
        / med["disabled_async"],
        "unsampled_root_block_over_disabled_block": med["unsampled_root_block"]
        / med["disabled_block"],
        "unsampled_child_block_over_disabled_block": med["unsampled_child_block"]
        / med["disabled_block"],
    }
    print(
        f"  head sampling, an unsampled call vs the disabled path: root "
        f"{med['unsampled_root']:.0f} ns ({sampling['unsampled_root_over_disabled']:.2f}x), "
        f"inside an unsampled tree {med['unsampled_child']:.0f} ns "
        f"({sampling['unsampled_child_over_disabled']:.2f}x); pure Python root "
        f"{med['unsampled_root_py']:.0f} ns vs {med['disabled_py']:.0f} ns "
        f"({sampling['unsampled_root_py_over_disabled_py']:.2f}x); async root "
        f"{med['unsampled_root_async']:.0f} ns vs {med['disabled_async']:.0f} ns "
        f"({sampling['unsampled_root_async_over_disabled_async']:.2f}x)"
    )
    print(
        f"  blocks: unsampled root {med['unsampled_root_block']:.0f} ns "
        f"({sampling['unsampled_root_block_over_disabled_block']:.2f}x a block while recording "
        f"is off, {med['disabled_block']:.0f} ns), inside an unsampled tree "
        f"{med['unsampled_child_block']:.0f} ns "
        f"({sampling['unsampled_child_block_over_disabled_block']:.2f}x), recorded "
        f"{med['block']:.0f} ns"
    )
    print(
        f"  EXECLOG_DISABLED=1 at decoration (subprocess): decorated is f -> "
        f"{env['decorated_is_f']} (with name=...: {env['named_is_f']})"
    )
    return {
        "concurrency": conc,
        "memory": mem,
        "disabled": {
            "disabled_ns": disabled,
            "functools_wraps_ns": wraps,
            "disabled_over_wraps": disabled / wraps,
            "env_disabled": env,
            "sampling": sampling,
        },
    }


# -- report ----------------------------------------------------------------------------------


def source_revision() -> str | None:
    """The git commit of the execlog being measured (``+dirty`` with uncommitted changes)."""
    src = Path(execlog.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=src,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=src,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("execlog", "opentelemetry-sdk", "orjson", "wrapt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "?"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "nproc": affinity or os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
        "execlog_revision": source_revision(),
    }


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def report(
    scenarios: list[Scenario], tp: dict[str, Any], info: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    by = {s.key: s for s in scenarios}
    med = {k: s.median for k, s in by.items()}
    empty = med["floor:empty_loop"]
    parts = {
        k.split(":", 1)[1]: (med[k] - empty if k != "floor:wraps_call" else med[k])
        for k in by
        if k.startswith("floor:") and k != "floor:empty_loop"
    }
    floor = sum(parts.values())

    bare_of = {"sync": "bare", "async": "async_bare", "nested": "nested_bare", "disabled": "bare"}
    otel_of = {
        "traced": "otel",
        "block": "otel",
        "traced_py": "otel",
        "block_py": "otel",
        "async_traced": "async_otel",
        "nested_traced": "nested_otel",
    }

    print()
    print(
        f"machine: nproc={info['nproc']}  cpu={info['cpu']}  {info['implementation']} "
        f"{info['python']}  {info['platform']}"
    )
    print(
        "versions: "
        + "  ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"  (execlog source: {info['execlog_revision'] or 'not a git checkout'})"
    )
    if info["loadavg_at_start"] is not None:
        info["loadavg_at_end"] = list(os.getloadavg())
        start, end = info["loadavg_at_start"], info["loadavg_at_end"]
        print(
            f"load average (1 min) at start {start[0]:.2f}, at end {end[0]:.2f} "
            "(other work on the machine shows up as noise)"
        )
    print(
        f"rounds={args.rounds}  target={args.target_ms} ms per measurement  clock={args.clock}  "
        f"execlog: batch_size={BATCH_SIZE} queue_size={QUEUE_SIZE} on_full=block"
    )
    print()
    header = (
        f"{'scenario':<38} {'ns/call':>9} {'best':>9} {'+ns vs bare':>11} "
        f"{'x bare':>8} {'OTel/this':>10} {'per round':>10}"
    )
    print(header)
    print("-" * len(header))
    rows_out = []
    for s in scenarios:
        if s.group == "floor" or s.group.startswith("shape:"):
            continue
        base = med[bare_of[s.group]]
        ratio_bare = s.median / base
        otel_key = otel_of.get(s.key)
        lighter = med[otel_key] / s.median if otel_key else None
        # Each round measures both sides within about a second: the median of the per-round
        # ratios leaves out much of what other work on the machine does to either median.
        per_round = (
            statistics.median(o / e for o, e in zip(by[otel_key].samples, s.samples))
            if otel_key
            else None
        )
        is_base = s.key == bare_of[s.group]
        print(
            f"{s.label:<38} {s.median:>9.0f} {s.best:>9.0f} "
            f"{'' if is_base else f'{s.median - base:>+.0f}':>11} "
            f"{fmt_ratio(ratio_bare):>8} {fmt_ratio(lighter):>10} {fmt_ratio(per_round):>10}"
        )
        rows_out.append(
            {
                "key": s.key,
                "label": s.label,
                "group": s.group,
                "n": s.n,
                "per": s.per,
                "ns_median": s.median,
                "ns_best": s.best,
                "ratio_to_bare": ratio_bare,
                "otel_over_this": lighter,
                "otel_over_this_per_round_median": per_round,
                "samples_ns": s.samples,
            }
        )
    traced = med["traced"]
    print(
        f"{'floor (sum of unavoidable parts)':<38} {floor:>9.0f} {'':>9} "
        f"{floor - med['bare']:>+11.0f} {fmt_ratio(floor / med['bare']):>8} "
        f"{fmt_ratio(med['otel'] / floor):>10}"
    )
    print(f"{'@traced_execution / floor':<38} {fmt_ratio(traced / floor):>9}")
    print()
    print("floor parts (median, loop overhead subtracted):")
    for key, value in parts.items():
        print(f"  {by['floor:' + key].label:<56} {value:>8.0f} ns")
    print(f"  {'empty loop iteration (subtracted from each part)':<56} {empty:>8.0f} ns")
    print()

    n = tp["rows"]
    e2e = tp["execlog_total_ns"]
    print(f"end-to-end throughput, {n:,} rows from one thread (statement: {tp['statement']}):")
    lines = [
        ("execlog traced calls + flush()", e2e, tp["rows_committed"]),
        ("  of which the calls themselves", tp["execlog_calls_ns"], None),
        (
            "bare sqlite3 executemany, 1 transaction",
            tp["sqlite_one_tx_ns"],
            tp["sqlite_one_tx_rows"],
        ),
        (
            f"bare sqlite3 executemany, {BATCH_SIZE}-row txns",
            tp["sqlite_batched_ns"],
            tp["sqlite_batched_rows"],
        ),
    ]
    for label, ns, committed in lines:
        rate = n / (ns / 1e9)
        extra = "" if committed is None else f"  ({committed:,} rows committed)"
        print(f"  {label:<42} {ns / 1e9:>8.3f} s {rate:>12,.0f} rows/s{extra}")
    print(
        f"  execlog end-to-end / bare sqlite3: {e2e / tp['sqlite_one_tx_ns']:.2f}x "
        f"(1 transaction), {e2e / tp['sqlite_batched_ns']:.2f}x ({BATCH_SIZE}-row transactions)"
    )
    if not tp["flush_ok"] or tp["rows_committed"] != n:
        print(f"  WARNING: flush ok={tp['flush_ok']}, {tp['rows_committed']} of {n} rows committed")

    return {
        "machine": info,
        "settings": {
            "rounds": args.rounds,
            "target_ms": args.target_ms,
            "seed": args.seed,
            "batch_size": BATCH_SIZE,
            "queue_size": QUEUE_SIZE,
        },
        "scenarios": rows_out,
        "floor": {
            "total_ns": floor,
            "parts_ns": parts,
            "empty_loop_ns": empty,
            "traced_over_floor": traced / floor,
        },
        "throughput": {
            **tp,
            "execlog_rows_per_s": n / (e2e / 1e9),
            "sqlite_one_tx_rows_per_s": n / (tp["sqlite_one_tx_ns"] / 1e9),
            "sqlite_batched_rows_per_s": n / (tp["sqlite_batched_ns"] / 1e9),
            "execlog_over_sqlite_one_tx": e2e / tp["sqlite_one_tx_ns"],
            "execlog_over_sqlite_batched": e2e / tp["sqlite_batched_ns"],
        },
    }


# -- call shapes ------------------------------------------------------------------------------

MAX_SHAPE_RATIO = 1.3  # issue #11: every shape at most 1.3x the positional call
MIN_OTEL_RATIO = 20.0  # ... and at least 20x lighter than OpenTelemetry (stretch 30x)


def _per_round(top: Scenario, bottom: Scenario) -> float:
    return statistics.median(t / b for t, b in zip(top.samples, bottom.samples))


def report_shapes(scenarios: list[Scenario], checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The call-shape table: each shape bare, traced and under OTel, with same-run ratios."""
    by = {s.key: s for s in scenarios}
    sync_pos = by[shape_key(SHAPES[0], "execlog")]
    async_pos = next(by[shape_key(x, "execlog")] for x in SHAPES if x.key == "async_positional")
    sync_bare = by[shape_key(SHAPES[0], "bare")]
    async_bare = next(by[shape_key(x, "bare")] for x in SHAPES if x.key == "async_positional")
    rows = []
    for shape in SHAPES:
        bare, traced, otel = (by[shape_key(shape, v)] for v in VARIANTS)
        pos, pos_bare = (async_pos, async_bare) if shape.is_async else (sync_pos, sync_bare)
        # execlog's own part, against the positional call's (the bare calls differ by shape)
        overhead = statistics.median(
            (t - b) / (p - pb)
            for t, b, p, pb in zip(traced.samples, bare.samples, pos.samples, pos_bare.samples)
        )
        check = checks[shape.key]
        rows.append(
            {
                "key": shape.key,
                "kind": shape.kind,
                "call": shape.label,
                "stand_in": check["stand_in"],
                "bare_ns": bare.median,
                "execlog_ns": traced.median,
                "execlog_ns_range": [min(traced.samples), max(traced.samples)],
                "otel_ns": otel.median,
                "execlog_over_positional": _per_round(traced, pos),
                "execlog_over_sync_positional": _per_round(traced, sync_pos),
                "overhead_over_positional_overhead": overhead,
                "otel_over_execlog": _per_round(otel, traced),
                "otel_over_execlog_range": [
                    min(o / t for o, t in zip(otel.samples, traced.samples)),
                    max(o / t for o, t in zip(otel.samples, traced.samples)),
                ],
                "inputs_ok": check["ok"],
                "inputs_recorded": check["recorded"],
            }
        )

    print()
    print(
        "call shapes: ns per call (median over rounds); ratios are medians of per-round ratios. "
        "'x pos' = execlog / execlog's positional call of the same kind (f(1), await af(1)); "
        "'x f(1)' = against the sync f(1); 'ovh x' = (execlog - bare) / the positional's"
    )
    header = (
        f"{'shape':<24} {'call':<20} {'stand-in':<15} {'bare':>6} {'execlog':>8} {'OTel':>8} "
        f"{'x pos':>6} {'x f(1)':>7} {'ovh x':>6} {'OTel/execlog':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        notes = []
        if row["execlog_over_positional"] > MAX_SHAPE_RATIO:
            notes.append(f"over {MAX_SHAPE_RATIO}x")
        if row["otel_over_execlog"] < MIN_OTEL_RATIO:
            notes.append(f"under {MIN_OTEL_RATIO:.0f}x")
        if not row["inputs_ok"]:
            notes.append(f"RECORDED {row['inputs_recorded']!r}")
        print(
            f"{row['kind']:<24} {row['call']:<20} {row['stand_in']:<15} {row['bare_ns']:>6.0f} "
            f"{row['execlog_ns']:>8.0f} {row['otel_ns']:>8.0f} "
            f"{row['execlog_over_positional']:>5.2f}x {row['execlog_over_sync_positional']:>6.2f}x "
            f"{row['overhead_over_positional_overhead']:>5.2f}x "
            f"{fmt_ratio(row['otel_over_execlog']):>13}"
            + (f"  {', '.join(notes)}" if notes else "")
        )
    print()
    print(
        "| shape | call | bare | execlog | OpenTelemetry | execlog / positional | OTel / execlog |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['kind']} | `{row['call']}` | {row['bare_ns'] / 1e3:.2f} µs "
            f"| {row['execlog_ns'] / 1e3:.2f} µs "
            f"| {row['otel_ns'] / 1e3:.1f} µs | {row['execlog_over_positional']:.2f}x "
            f"| {fmt_ratio(row['otel_over_execlog'])} |"
        )
    return {
        "targets": {"max_shape_ratio": MAX_SHAPE_RATIO, "min_otel_ratio": MIN_OTEL_RATIO},
        "rows": rows,
    }


#: With --shapes-only: the groups of the positional calls the shapes are compared with.
SHAPE_GROUPS = {"sync", "async"}


def _shapes_only(
    scenarios: list[Scenario],
    checks: dict[str, dict[str, Any]],
    info: dict[str, Any],
    args: argparse.Namespace,
) -> int:
    info["loadavg_at_end"] = list(os.getloadavg())
    print(
        f"\nexeclog source: {info['execlog_revision']}; load average (1 min) at start "
        f"{info['loadavg_at_start'][0]:.2f}, at end {info['loadavg_at_end'][0]:.2f}; "
        f"rounds={args.rounds}, target={args.target_ms} ms per measurement, clock={args.clock}"
    )
    results = {"machine": info, "clock": args.clock, "shapes": report_shapes(scenarios, checks)}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nresults written to {args.json}")
    return 0


def _settle(args: argparse.Namespace) -> None:
    """Fill in the defaults that depend on ``--quick``."""
    args.rounds = args.rounds or (3 if args.quick else 15)
    args.rows = args.rows or (20_000 if args.quick else 200_000)
    args.target_ms = args.target_ms or (5.0 if args.quick else 20.0)
    args.threads_calls = args.threads_calls or (5_000 if args.quick else 50_000)
    args.threads_reps = 1 if args.quick else 3
    args.memory_calls = 20_000 if args.quick else 100_000  # tracemalloc'd calls
    args.burst_calls = 200_000 if args.quick else 1_000_000
    args.leak_calls = 20_000 if args.quick else 100_000
    args.sustained_s = 1.0 if args.quick else 3.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, 20,000 rows")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 15)")
    parser.add_argument("--rows", type=int, default=None, help="throughput rows (200,000)")
    parser.add_argument(
        "--target-ms",
        type=float,
        default=None,
        help="time of one measurement in ms (default 20, quick 5)",
    )
    parser.add_argument(
        "--threads-calls",
        type=int,
        default=None,
        help="traced calls per thread in the concurrency part (50,000, quick 5,000)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="what the rounds measure: wall time (default) or the calling thread's CPU time, "
        "which other work on a shared machine moves less (the writer's and OTel's export "
        "threads are left out either way, but for the GIL they hold)",
    )
    parser.add_argument(
        "--shapes-only",
        action="store_true",
        help="only the call-shape table (with the sync and async groups it compares to)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round order")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _settle(args)

    for name in ("EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID", "EXECLOG_STRICT"):
        os.environ.pop(name, None)

    info = machine()
    with tempfile.TemporaryDirectory(prefix="execlog-compare-") as tmp:
        workdir = Path(tmp)
        execlog.configure(
            db=str(workdir / "overhead.db"),
            queue_size=QUEUE_SIZE,
            batch_size=BATCH_SIZE,
            enabled=True,
        )
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
        loop = asyncio.new_event_loop()
        try:
            global perf_ns  # noqa: PLW0603 - the timers read it at each measurement
            perf_ns = CLOCKS[args.clock]
            targets = shape_targets(provider)
            scenarios = build_scenarios(loop, provider, targets)
            if args.shapes_only:
                scenarios = [s for s in scenarios if s.group in SHAPE_GROUPS or "shape:" in s.key]
            print(f"calibrating and running {args.rounds} rounds...", file=sys.stderr)
            run_rounds(scenarios, args.rounds, args.target_ms, args.seed)
            perf_ns = time.perf_counter_ns  # the rest is timed on the wall clock
            checks = check_shapes(targets["execlog"], loop, str(workdir / "overhead.db"))
            if args.shapes_only:
                return _shapes_only(scenarios, checks, info, args)
            print(f"throughput: {args.rows:,} rows...", file=sys.stderr)
            tp = throughput(args.rows, workdir)
            print(
                f"concurrency: 1, 2, 4 threads x {args.threads_calls:,} calls...", file=sys.stderr
            )
            conc = concurrency(args.threads_calls, args.threads_reps, workdir)
            print(f"sustained: {args.sustained_s:g} s of calls flat out...", file=sys.stderr)
            conc["sustained"] = sustained(args.sustained_s, workdir)
            print(
                f"memory: {args.memory_calls:,}-record queue, {args.burst_calls:,}-call burst, "
                f"5 x {args.leak_calls:,}-call bursts...",
                file=sys.stderr,
            )
            mem = memory(args, workdir)
            env = env_disabled_check()
        finally:
            loop.close()
            provider.shutdown()
            execlog.shutdown()
        results = report(scenarios, tp, info, args)
        results["shapes"] = report_shapes(scenarios, checks)
        results.update(report_scaling(scenarios, conc, mem, env))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
