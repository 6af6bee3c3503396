"""The call shapes of issue #11, each bare, traced by execlog and under OpenTelemetry.

Used by ``compare.py`` (the call-shape table) and ``instructions.py`` (instructions per call
under callgrind). Every shape computes ``a + b`` (or counts its arguments) and every
instrumented variant records the same thing: the call's bound arguments as the inputs (``self``
and ``cls`` left out, defaults included, ``*args`` a list and ``**kwargs`` a dict) and the
result as the output, in JSON. OpenTelemetry sets them as span attributes, as
``compare.py`` does for ``f(1)``.

The functions: ``def f(a, b=2)``, ``def k(a, *, b=2)``, ``def v(*args, **kwargs)``, and
``m``, ``c`` (classmethod), ``s`` (staticmethod), each ``(a, b=2)``, on a class ``C``; the
async shapes are the same as ``async def``, awaited.

A shape is timed by a loop whose body is the call expression itself (compiled from source, so
that no extra Python frame sits between the loop and the call): ``fn(1, b=3)``,
``fn.m(1)`` on an instance, ``fn.c(1)`` on a class, and ``await ...`` of the same inside one
event loop for the async shapes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

import execlog

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

VARIANTS = ("bare", "execlog", "otel")


@dataclass(frozen=True)
class Shape:
    key: str
    kind: str  # what is special about it
    label: str  # how the call is written
    call: str  # the call expression; ``fn`` is the target (function, instance or class)
    target: str  # which attribute of Targets the call goes through: f, k, v, obj, cls
    inputs: dict[str, Any]  # what execlog records (checked by compare.py)
    is_async: bool = False


def _shapes() -> tuple[Shape, ...]:
    ab2, ab3 = {"a": 1, "b": 2}, {"a": 1, "b": 3}
    va, vk = {"args": [1, 2], "kwargs": {}}, {"args": [1], "kwargs": {"x": 2}}
    sync = (
        Shape("positional", "positional", "f(1)", "fn(1)", "f", ab2),
        Shape("keyword", "keyword", "f(1, b=3)", "fn(1, b=3)", "f", ab3),
        Shape("all_keyword", "all keywords", "f(a=1, b=3)", "fn(a=1, b=3)", "f", ab3),
        Shape("keyword_only", "keyword-only", "k(1, b=3)", "fn(1, b=3)", "k", ab3),
        Shape("varargs", "*args", "v(1, 2)", "fn(1, 2)", "v", va),
        Shape("varkw", "**kwargs", "v(1, x=2)", "fn(1, x=2)", "v", vk),
        Shape("method", "method", "obj.m(1)", "fn.m(1)", "obj", ab2),
        Shape("method_keyword", "method, keyword", "obj.m(1, b=3)", "fn.m(1, b=3)", "obj", ab3),
        Shape("classmethod", "classmethod", "C.c(1)", "fn.c(1)", "cls", ab2),
        Shape("staticmethod", "staticmethod", "C.s(1)", "fn.s(1)", "cls", ab2),
    )
    return sync + tuple(
        Shape(
            f"async_{s.key}",
            f"async {s.kind}",
            f"await {s.label}",
            f"await {s.call}",
            s.target,
            s.inputs,
            is_async=True,
        )
        for s in sync
    )


SHAPES: tuple[Shape, ...] = _shapes()
BY_KEY = {s.key: s for s in SHAPES}


# -- the functions, in every variant ----------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """What the calls of one variant go through, sync and async."""

    f: Any
    k: Any
    v: Any
    obj: Any
    cls: Any
    af: Any
    ak: Any
    av: Any
    aobj: Any
    acls: Any

    def of(self, shape: Shape) -> Any:
        return getattr(self, f"a{shape.target}" if shape.is_async else shape.target)


def bare_targets() -> Targets:
    def f(a, b=2):
        return a + b

    def k(a, *, b=2):
        return a + b

    def v(*args, **kwargs):
        return len(args) + len(kwargs)

    class C:
        def m(self, a, b=2):
            return a + b

        @classmethod
        def c(cls, a, b=2):
            return a + b

        @staticmethod
        def s(a, b=2):
            return a + b

    async def af(a, b=2):
        return a + b

    async def ak(a, *, b=2):
        return a + b

    async def av(*args, **kwargs):
        return len(args) + len(kwargs)

    class AC:
        async def m(self, a, b=2):
            return a + b

        @classmethod
        async def c(cls, a, b=2):
            return a + b

        @staticmethod
        async def s(a, b=2):
            return a + b

    return Targets(f, k, v, C(), C, af, ak, av, AC(), AC)


def execlog_targets() -> Targets:
    """Traced with ``@traced_execution`` (above ``@classmethod``/``@staticmethod``)."""
    traced = execlog.traced_execution

    @traced(name="f")
    def f(a, b=2):
        return a + b

    @traced(name="k")
    def k(a, *, b=2):
        return a + b

    @traced(name="v")
    def v(*args, **kwargs):
        return len(args) + len(kwargs)

    class C:
        @traced(name="m")
        def m(self, a, b=2):
            return a + b

        @traced(name="c")
        @classmethod
        def c(cls, a, b=2):
            return a + b

        @traced(name="s")
        @staticmethod
        def s(a, b=2):
            return a + b

    @traced(name="af")
    async def af(a, b=2):
        return a + b

    @traced(name="ak")
    async def ak(a, *, b=2):
        return a + b

    @traced(name="av")
    async def av(*args, **kwargs):
        return len(args) + len(kwargs)

    class AC:
        @traced(name="am")
        async def m(self, a, b=2):
            return a + b

        @traced(name="ac")
        @classmethod
        async def c(cls, a, b=2):
            return a + b

        @traced(name="as")
        @staticmethod
        async def s(a, b=2):
            return a + b

    return Targets(f, k, v, C(), C, af, ak, av, AC(), AC)


def otel_targets(tracer: Any) -> Targets:
    """Under ``@tracer.start_as_current_span``, with the inputs and output as attributes."""
    span = tracer.start_as_current_span
    current = trace.get_current_span
    dumps = json.dumps

    @span("f")
    def f(a, b=2):
        s = current()
        s.set_attribute("inputs", dumps({"a": a, "b": b}))
        result = a + b
        s.set_attribute("output", dumps(result))
        return result

    @span("k")
    def k(a, *, b=2):
        s = current()
        s.set_attribute("inputs", dumps({"a": a, "b": b}))
        result = a + b
        s.set_attribute("output", dumps(result))
        return result

    @span("v")
    def v(*args, **kwargs):
        s = current()
        s.set_attribute("inputs", dumps({"args": list(args), "kwargs": kwargs}))
        result = len(args) + len(kwargs)
        s.set_attribute("output", dumps(result))
        return result

    class C:
        @span("m")
        def m(self, a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

        @classmethod
        @span("c")
        def c(cls, a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

        @staticmethod
        @span("s")
        def s(a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

    @span("af")
    async def af(a, b=2):
        s = current()
        s.set_attribute("inputs", dumps({"a": a, "b": b}))
        result = a + b
        s.set_attribute("output", dumps(result))
        return result

    @span("ak")
    async def ak(a, *, b=2):
        s = current()
        s.set_attribute("inputs", dumps({"a": a, "b": b}))
        result = a + b
        s.set_attribute("output", dumps(result))
        return result

    @span("av")
    async def av(*args, **kwargs):
        s = current()
        s.set_attribute("inputs", dumps({"args": list(args), "kwargs": kwargs}))
        result = len(args) + len(kwargs)
        s.set_attribute("output", dumps(result))
        return result

    class AC:
        @span("am")
        async def m(self, a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

        @classmethod
        @span("ac")
        async def c(cls, a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

        @staticmethod
        @span("as")
        async def s(a, b=2):
            s = current()
            s.set_attribute("inputs", dumps({"a": a, "b": b}))
            result = a + b
            s.set_attribute("output", dumps(result))
            return result

    return Targets(f, k, v, C(), C, af, ak, av, AC(), AC)


# -- loops ------------------------------------------------------------------------------------

_SYNC_LOOP = """
def run(n):
    rng = range(n)
    t0 = perf_ns()
    for _ in rng:
        {call}
    return perf_ns() - t0
"""

_ASYNC_LOOP = """
async def batch(n):
    rng = range(n)
    for _ in rng:
        {call}
"""


def loop_of(
    shape: Shape,
    target: Any,
    loop: asyncio.AbstractEventLoop | None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Callable[[int], int]:
    """A function that makes ``shape``'s call on ``target`` n times and returns the ns taken
    (by ``clock``: wall time, or ``time.thread_time_ns`` for the calling thread's CPU time)."""
    namespace: dict[str, Any] = {"fn": target, "perf_ns": clock}
    if not shape.is_async:
        exec(_SYNC_LOOP.format(call=shape.call), namespace)
        return namespace["run"]
    if loop is None:
        raise ValueError(f"{shape.key} needs an event loop")
    exec(_ASYNC_LOOP.format(call=shape.call), namespace)
    batch = namespace["batch"]
    run_until_complete = loop.run_until_complete
    perf_ns = clock

    def run(n: int) -> int:
        t0 = perf_ns()
        run_until_complete(batch(n))
        return perf_ns() - t0

    return run


def call_once(shape: Shape, target: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
    """The result of one call of ``shape`` on ``target`` (awaited for an async shape)."""
    namespace: dict[str, Any] = {"fn": target}
    if not shape.is_async:
        return eval(shape.call, namespace)
    if loop is None:
        raise ValueError(f"{shape.key} needs an event loop")
    exec(f"async def once():\n    return {shape.call}\n", namespace)
    return loop.run_until_complete(namespace["once"]())


def stand_in(shape: Shape, target: Any) -> str:
    """The type of what stands in for the traced function (``TracedFunction`` is the C one)."""
    if shape.target not in {"obj", "cls"}:
        return type(target).__name__
    name = shape.call.split(".", 1)[1].split("(", 1)[0]
    cls = target if isinstance(target, type) else type(target)
    member = cls.__dict__[name]
    return type(getattr(member, "__func__", member)).__name__


def recorded_inputs(
    shape: Shape, target: Any, loop: asyncio.AbstractEventLoop | None, db: str
) -> Any:
    """The inputs execlog recorded for one call of ``shape`` (None if nothing was recorded)."""
    with execlog.execution(f"shape-check:{shape.key}") as probe:
        call_once(shape, target, loop)
    execlog.flush(timeout=60.0)
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT inputs FROM executions WHERE parent_execution_id = ?", (probe.execution_id,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])
