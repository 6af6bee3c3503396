"""Type-checked use of the public API (``mypy --strict tests/typing``); never executed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import execlog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@execlog.traced_execution
def load(path: str, limit: int = 10) -> list[str]:
    return [path] * limit


@execlog.traced_execution(name="transform", kind="node", tags={"team": "data"}, redact=("ssn",))
async def transform(rows: list[str]) -> int:
    return len(rows)


@execlog.traced_execution
def numbers(n: int) -> Iterator[int]:
    yield from range(n)


@execlog.traced_execution
async def anumbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Service:
    @execlog.traced_execution
    def method(self, x: int) -> int:
        return x

    @classmethod
    @execlog.traced_execution
    def build(cls, name: str) -> str:
        return name


def use_api() -> None:
    execlog.configure(db="runs.db", batch_size=1024, on_full="drop", redact=("ssn",))
    rows: list[str] = load("a.csv")
    first: int = Service().method(1)
    with execlog.execution("nightly", kind="workflow", inputs={"day": 1}) as ex:
        ex_id: str = ex.execution_id
        correlation: str = ex.correlation_id
        parent: str | None = ex.parent_execution_id
        ex.tag(rows=len(rows), first=first)
        ex.set_output({"rows": len(rows)})
        ex.set_status("partial")
        current: execlog.ExecutionHandle | None = execlog.current_execution()
        env: dict[str, str] = execlog.inject({})
        headers: dict[str, str] = execlog.inject({}, style="http")
        context: execlog.PropagationContext | None = execlog.extract(headers)
        print(ex_id, correlation, parent, current, env, context)
    with execlog.execution("retry", parent=ex, trigger_kind="retry"):
        pass
    ok: bool = execlog.flush(timeout=5.0)
    execlog.shutdown()
    store: execlog.Store = execlog.open_store("runs.db")
    created: execlog.Store = execlog.open_store("new.db", create=True)
    missing: type[FileNotFoundError] = execlog.StoreNotFoundError
    full: str = store.resolve_id("01a23d10-9a62")
    short: dict[str, str] = store.short_ids([full, store.resolve_correlation_id("01a23d10")])
    ambiguous: tuple[str, ...] = execlog.AmbiguousIdError("01a23d10", (full,)).candidates
    found: execlog.Execution | None = store.get("id")
    recent: list[execlog.Execution] = store.recent(10)
    listed: list[execlog.Execution] = store.list(
        name="load", status="error", since=dt.datetime.now(dt.timezone.utc), limit=5
    )
    chain: list[execlog.Execution] = store.correlation_chain("cid")
    tree: execlog.Lineage = store.lineage("id", depth=5)
    ancestors = list(tree.ancestors)
    per_name: list[execlog.Stats] = store.stats(name="load", since=dt.datetime.now(dt.timezone.utc))
    p95: float | None = per_name[0].p95_ms if per_name else None
    removed: int = store.delete("id") + store.prune(older_than=dt.timedelta(days=30))
    print(ancestors, p95, removed)
    if found is not None:
        started: dt.datetime = found.started_at
        data: dict[str, object] = found.to_dict()
        print(started, data)
    print(ok, recent, listed, chain, list(numbers(3)), created, missing, short, ambiguous)


def interop() -> None:
    import logging
    import logging.config

    import execlog.logging
    from execlog.otel import OpenTelemetryExporter, to_span

    with execlog.execution("step"):
        execlog.event("rows loaded", rows=3)
        execlog.event("slow", level="warning")
        execlog.event("numbered", level=logging.ERROR, source="s3")
        w3c: dict[str, str] = execlog.inject({}, style="w3c")
        print(w3c)
    handler: logging.Handler = execlog.logging.ExecutionLogHandler(level=logging.INFO)
    handler.addFilter(execlog.logging.ExecutionContextFilter())
    store = execlog.open_store("runs.db")
    events: list[execlog.Event] = store.events("id")
    for ev in events:
        at: dt.datetime = ev.at
        level: str = ev.level
        print(at, level, ev.message, ev.attributes, ev.logger, ev.to_dict())
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = OpenTelemetryExporter(InMemorySpanExporter(), max_queue_size=100)
    execlog.configure(export=[exporter])
    flushed: bool = exporter.force_flush(timeout=1.0)
    lost: int = exporter.lost
    found = store.get("id")
    if found is not None:
        print(to_span(found, events).name)
    print(flushed, lost)
    exporter.shutdown()
