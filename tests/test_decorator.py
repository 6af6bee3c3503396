"""Tests for ``@traced_execution`` and ``execution()``, read back from a real SQLite file.

Every callable kind (function, coroutine, generator, async generator, instance method,
classmethod and staticmethod, decorated above and below ``@classmethod``/``@staticmethod``) is
run through the same checks; ``with`` and ``async with`` are parametrized the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows
from execlog import current_execution, execution, traced_execution
from execlog._recorder import RECORDER

# Every test here runs on the C fast path and on the pure-Python path.
pytestmark = pytest.mark.usefixtures("implementation")

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


# -- helpers -------------------------------------------------------------------------------


def one(db: str, name: str) -> dict[str, Any]:
    """The only row called ``name``."""
    found = rows(db, "name = ?", (name,))
    assert 1 == len(found), found
    return found[0]


def decoded(text: str | None) -> Any:
    """A JSON column as Python data (None stays None)."""
    return None if text is None else json.loads(text)


async def collect(agen: AsyncIterator[Any]) -> list[Any]:
    """Drain an async iterator."""
    return [item async for item in agen]


def run_block(mode: str, body: Callable[[Any], Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``body(handle)`` inside ``execution(*args, **kwargs)`` entered with ``with`` or
    ``async with`` (``mode`` is ``"with"`` or ``"async with"``)."""
    if mode == "with":
        with execution(*args, **kwargs) as ex:
            return body(ex)

    async def main() -> Any:
        async with execution(*args, **kwargs) as ex:
            return body(ex)

    return asyncio.run(main())


BLOCK_MODES = pytest.mark.parametrize("mode", ["with", "async with"])


# -- every callable kind, built by one factory for each decorator form ----------------------


@dataclass(frozen=True)
class Case:
    """One way of calling one kind of decorated callable."""

    id: str
    qualname: str
    call: Callable[..., Any]  # runs the callable to completion, returns what it gave
    expected: Callable[[int, int], Any]  # what the undecorated callable gives


def _add(x: int, y: int) -> int:
    return x + y


def _pair(x: int, y: int) -> list[int]:
    return [x, y]


def _build(deco: Callable[[Any], Any]) -> list[Case]:
    """Decorate one callable of every kind with ``deco``; return the ways of calling them."""

    @deco
    def plain(x, y=2):
        return x + y

    @deco
    async def coroutine(x, y=2):
        await asyncio.sleep(0)
        return x + y

    @deco
    def generator(x, y=2):
        yield x
        yield y

    @deco
    async def agenerator(x, y=2):
        yield x
        await asyncio.sleep(0)
        yield y

    class Widget:
        @deco
        def method(self, x, y=2):
            assert isinstance(self, Widget)
            return x + y

        @deco
        async def amethod(self, x, y=2):
            assert isinstance(self, Widget)
            await asyncio.sleep(0)
            return x + y

        @deco
        def gmethod(self, x, y=2):
            assert isinstance(self, Widget)
            yield x
            yield y

        @deco
        @classmethod
        def cls_above(cls, x, y=2):
            assert cls is Widget
            return x + y

        @classmethod
        @deco
        def cls_below(cls, x, y=2):
            assert cls is Widget
            return x + y

        @deco
        @staticmethod
        def static_above(x, y=2):
            return x + y

        @staticmethod
        @deco
        def static_below(x, y=2):
            return x + y

    w = Widget()
    p = "_build.<locals>."
    return [
        Case("function", f"{p}plain", plain, _add),
        Case(
            "async-function",
            f"{p}coroutine",
            lambda *a, **k: asyncio.run(coroutine(*a, **k)),
            _add,
        ),
        Case("generator", f"{p}generator", lambda *a, **k: list(generator(*a, **k)), _pair),
        Case(
            "async-generator",
            f"{p}agenerator",
            lambda *a, **k: asyncio.run(collect(agenerator(*a, **k))),
            _pair,
        ),
        Case("method-via-instance", f"{p}Widget.method", w.method, _add),
        Case(
            "method-via-class",
            f"{p}Widget.method",
            lambda *a, **k: Widget.method(Widget(), *a, **k),
            _add,
        ),
        Case(
            "async-method",
            f"{p}Widget.amethod",
            lambda *a, **k: asyncio.run(w.amethod(*a, **k)),
            _add,
        ),
        Case(
            "generator-method",
            f"{p}Widget.gmethod",
            lambda *a, **k: list(w.gmethod(*a, **k)),
            _pair,
        ),
        Case("classmethod-above-via-class", f"{p}Widget.cls_above", Widget.cls_above, _add),
        Case("classmethod-above-via-instance", f"{p}Widget.cls_above", w.cls_above, _add),
        Case("classmethod-below-via-class", f"{p}Widget.cls_below", Widget.cls_below, _add),
        Case("classmethod-below-via-instance", f"{p}Widget.cls_below", w.cls_below, _add),
        Case("staticmethod-above-via-class", f"{p}Widget.static_above", Widget.static_above, _add),
        Case("staticmethod-above-via-instance", f"{p}Widget.static_above", w.static_above, _add),
        Case("staticmethod-below-via-class", f"{p}Widget.static_below", Widget.static_below, _add),
        Case("staticmethod-below-via-instance", f"{p}Widget.static_below", w.static_below, _add),
    ]


BARE = _build(traced_execution)
CUSTOM = _build(
    traced_execution(
        name="custom",
        kind="node",
        tags={"team": "data", "n": 1},
        trigger_kind="scheduled",
        redact=("y",),
    )
)
UNCAPTURED = _build(traced_execution(capture_inputs=False, capture_output=False))


def _ids(case: Case) -> str:
    return case.id


class TestEveryCallableKind:
    """The decorator, bare and with arguments, on every kind of callable."""

    @pytest.mark.parametrize("case", BARE, ids=_ids)
    def test_bare_records_one_success_row(self, case: Case, db: str) -> None:
        """Bare form: name is the qualname, kind 'function', inputs without self/cls."""
        assert case.expected(3, 4) == case.call(3, 4)

        [row] = rows(db)
        assert case.qualname == row["name"]
        assert "function" == row["kind"]
        assert "success" == row["status"]
        assert {"x": 3, "y": 4} == decoded(row["inputs"])
        assert case.expected(3, 4) == decoded(row["output"])
        assert "manual" == row["trigger_kind"]
        assert row["parent_execution_id"] is None
        assert row["execution_id"] == row["correlation_id"]
        assert row["error_type"] is None
        assert row["duration_ms"] >= 0
        assert row["ended_at"] >= row["started_at"]

    @pytest.mark.parametrize("case", CUSTOM, ids=_ids)
    def test_arguments_are_applied(self, case: Case, db: str) -> None:
        """name, kind, tags, trigger_kind and redact given to the decorator end up in the row."""
        assert case.expected(3, 4) == case.call(3, 4)

        [row] = rows(db)
        assert "custom" == row["name"]
        assert "node" == row["kind"]
        assert {"team": "data", "n": 1} == decoded(row["tags"])
        assert "scheduled" == row["trigger_kind"]
        assert {"x": 3, "y": "[REDACTED]"} == decoded(row["inputs"])
        assert case.expected(3, 4) == decoded(row["output"])
        assert "success" == row["status"]

    @pytest.mark.parametrize("case", UNCAPTURED, ids=_ids)
    def test_capture_off(self, case: Case, db: str) -> None:
        """capture_inputs/capture_output=False leave inputs and output out of the row."""
        assert case.expected(3, 4) == case.call(3, 4)

        [row] = rows(db)
        assert row["inputs"] is None
        assert row["output"] is None
        assert "success" == row["status"]

    @pytest.mark.parametrize("case", BARE, ids=_ids)
    def test_disabled_calls_work_and_record_nothing(self, case: Case, db: str) -> None:
        """configure(enabled=False): the call returns what it should and nothing is recorded."""
        execlog.configure(enabled=False)

        assert case.expected(5, 6) == case.call(5, 6)

        execlog.configure(enabled=True)
        with execution("marker"):
            pass
        assert ["marker"] == [r["name"] for r in rows(db)]

    @pytest.mark.parametrize("case", BARE, ids=_ids)
    def test_keyword_arguments_bind_to_names(self, case: Case, db: str) -> None:
        """Arguments passed by keyword are recorded under their parameter names."""
        assert case.expected(7, 8) == case.call(y=8, x=7)

        [row] = rows(db)
        assert {"x": 7, "y": 8} == decoded(row["inputs"])

    @pytest.mark.parametrize("case", BARE, ids=_ids)
    def test_default_used(self, case: Case, db: str) -> None:
        """A parameter left to its default is either left out or recorded with the default."""
        assert case.expected(7, 2) == case.call(7)

        [row] = rows(db)
        inputs = decoded(row["inputs"])
        assert 7 == inputs["x"]
        assert 2 == inputs.get("y", 2)
        assert set(inputs) <= {"x", "y"}


class TestCallableObjects:
    """An object whose class defines ``__call__``: traced as what its ``__call__`` is."""

    def test_an_async_call_is_recorded_while_awaited(self, db: str) -> None:
        class Fetcher:
            async def __call__(self, n: int) -> int:
                await asyncio.sleep(0.02)
                return n * 2

        fetch = traced_execution(Fetcher(), name="fetch")
        assert inspect.iscoroutinefunction(Fetcher.__call__)
        assert 6 == asyncio.run(fetch(3))
        [row] = rows(db)
        assert {"n": 3} == decoded(row["inputs"])
        assert 6 == decoded(row["output"])  # the awaited value, not a coroutine's repr
        assert row["duration_ms"] >= 15

    def test_a_generator_call_is_recorded_for_its_iteration(self, db: str) -> None:
        class Counter:
            def __call__(self, n: int) -> Iterator[int]:
                yield from range(n)

        count = traced_execution(Counter(), name="count")
        assert [0, 1, 2] == list(count(3))
        [row] = rows(db)
        assert [0, 1, 2] == decoded(row["output"])

    def test_an_async_generator_call_is_recorded_for_its_iteration(self, db: str) -> None:
        class Ticker:
            async def __call__(self, n: int) -> AsyncIterator[int]:
                for i in range(n):
                    yield i

        tick = traced_execution(Ticker(), name="tick")

        async def main() -> list[int]:
            return [i async for i in tick(2)]

        assert [0, 1] == asyncio.run(main())
        [row] = rows(db)
        assert [0, 1] == decoded(row["output"])

    def test_a_plain_call(self, db: str) -> None:
        class Adder:
            def __call__(self, a: int, b: int = 2) -> int:
                return a + b

        add = traced_execution(Adder(), name="add")
        assert 5 == add(3)
        [row] = rows(db)
        assert 5 == decoded(row["output"])


class HugeRepr:
    """No JSON form, and a 50,000-character repr."""

    def __repr__(self) -> str:
        return "HugeRepr(" + "x" * 50_000 + ")"


class BrokenRepr:
    """No JSON form, and a repr that raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class TestInputs:
    """Arguments bound to parameter names, as JSON."""

    def test_var_positional_and_var_keyword_under_their_own_names(self, db: str) -> None:
        """*args is a list under its name, **kwargs a dict under its name."""

        @traced_execution(name="f")
        def f(a, *rest, key=1, **extra):
            return a

        assert 1 == f(1, 2, 3, key=4, z=5, w=[6])

        assert {"a": 1, "rest": [2, 3], "key": 4, "extra": {"z": 5, "w": [6]}} == decoded(
            one(db, "f")["inputs"]
        )

    def test_empty_var_arguments(self, db: str) -> None:
        """With nothing extra passed, *args is [] and **kwargs is {}."""

        @traced_execution(name="f")
        def f(*args, **kwargs):
            return len(args) + len(kwargs)

        assert 0 == f()

        assert {"args": [], "kwargs": {}} == decoded(one(db, "f")["inputs"])

    def test_positional_only_and_keyword_only(self, db: str) -> None:
        """Positional-only and keyword-only parameters are recorded by name."""

        @traced_execution(name="f")
        def f(a, /, b, *, c):
            return a + b + c

        assert 6 == f(1, 2, c=3)

        assert {"a": 1, "b": 2, "c": 3} == decoded(one(db, "f")["inputs"])

    def test_defaults_may_be_included(self, db: str) -> None:
        """What the call passed is recorded; a default, if included, has its value."""

        @traced_execution(name="load")
        def load(path, limit=10):
            return path

        assert "a.csv" == load("a.csv")

        inputs = decoded(one(db, "load")["inputs"])
        assert "a.csv" == inputs["path"]
        assert 10 == inputs.get("limit", 10)
        assert set(inputs) <= {"path", "limit"}

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(HugeRepr, id="huge-repr"),
            pytest.param(BrokenRepr, id="repr-raises"),
            pytest.param(object, id="plain-object"),
        ],
    )
    def test_unencodable_argument_stored_as_bounded_repr(
        self, make: Callable[[], Any], db: str
    ) -> None:
        """An argument with no JSON form is stored as a bounded string; the call is unchanged."""
        value = make()

        @traced_execution(name="f")
        def f(value):
            return value

        assert value is f(value)

        row = one(db, "f")
        assert "success" == row["status"]
        stored = decoded(row["inputs"])["value"]
        assert isinstance(stored, str)
        assert 0 < len(stored) <= 2_000
        assert isinstance(decoded(row["output"]), str)
        assert len(row["output"]) <= 2_100

    def test_huge_repr_starts_like_the_repr(self, db: str) -> None:
        """The bounded repr is the beginning of the object's repr."""

        @traced_execution(name="f")
        def f(value):
            return None

        f(HugeRepr())

        stored = decoded(one(db, "f")["inputs"])["value"]
        assert stored.startswith("HugeRepr(xxxx")
        assert len(stored) < 2_000

    def test_cyclic_argument(self, db: str) -> None:
        """A self-referencing list is recorded without error and returned unchanged."""
        cyclic: list[Any] = [1]
        cyclic.append(cyclic)

        @traced_execution(name="f")
        def f(value):
            return len(value)

        assert 2 == f(cyclic)

        row = one(db, "f")
        assert "success" == row["status"]
        assert 1 == decoded(row["inputs"])["value"][0]


class TestDurations:
    """Durations cover the awaited or iterated work, not the creation of a coroutine."""

    def test_async_function_duration_covers_the_await(self, db: str) -> None:
        """An async def that sleeps 50 ms records about 50 ms, not ~0 (trap 1)."""

        @traced_execution(name="slow")
        async def slow():
            await asyncio.sleep(0.05)
            return "done"

        assert "done" == asyncio.run(slow())

        row = one(db, "slow")
        assert row["duration_ms"] >= 45
        assert row["ended_at"] - row["started_at"] >= 45_000

    def test_async_generator_duration_covers_the_iteration(self, db: str) -> None:
        """An async generator's execution lasts for its whole iteration."""

        @traced_execution(name="agen")
        async def agen():
            for i in range(2):
                await asyncio.sleep(0.025)
                yield i

        assert [0, 1] == asyncio.run(collect(agen()))

        assert one(db, "agen")["duration_ms"] >= 45

    def test_generator_duration_spans_consumption(self, db: str) -> None:
        """A generator's execution lasts from the first item until exhaustion."""

        @traced_execution(name="gen")
        def gen():
            yield 1
            yield 2

        items = []
        for item in gen():
            items.append(item)
            time.sleep(0.025)  # the consumer is slow: the iteration takes >= 50 ms

        assert [1, 2] == items
        assert one(db, "gen")["duration_ms"] >= 45

    def test_sync_function_duration(self, db: str) -> None:
        """A plain function that sleeps 50 ms records about 50 ms."""

        @traced_execution(name="f")
        def f():
            time.sleep(0.05)

        f()

        assert one(db, "f")["duration_ms"] >= 45


class TestGenerators:
    """Generators: output, early close, and which execution is current when."""

    def test_output_is_the_yielded_items(self, db: str) -> None:
        """Output is the list of yielded items, JSON types kept."""

        @traced_execution(name="gen")
        def gen():
            yield {"a": 1}
            yield [1.5, None]
            yield "s"

        assert [{"a": 1}, [1.5, None], "s"] == list(gen())

        assert [{"a": 1}, [1.5, None], "s"] == decoded(one(db, "gen")["output"])

    def test_closed_before_exhaustion_is_partial(self, db: str) -> None:
        """A generator closed after one item records status partial."""

        @traced_execution(name="gen")
        def gen():
            yield 1
            yield 2
            yield 3

        g = gen()
        assert 1 == next(g)
        g.close()

        row = one(db, "gen")
        assert "partial" == row["status"]
        assert [1] == decoded(row["output"])

    def test_break_out_of_for_loop_is_partial(self, db: str) -> None:
        """Leaving a for loop early drops (and so closes) the generator: status partial."""

        @traced_execution(name="gen")
        def gen():
            yield from range(5)

        for item in gen():
            if item == 1:
                break

        row = one(db, "gen")
        assert "partial" == row["status"]
        assert [0, 1] == decoded(row["output"])

    def test_async_generator_closed_before_exhaustion_is_partial(self, db: str) -> None:
        """An async generator closed after one item records status partial."""

        @traced_execution(name="agen")
        async def agen():
            yield 1
            yield 2

        async def main():
            g = agen()
            first = await g.__anext__()
            await g.aclose()
            return first

        assert 1 == asyncio.run(main())

        assert "partial" == one(db, "agen")["status"]

    def test_send_throw_and_return_value_pass_through(self, db: str) -> None:
        """send(), throw() and the return value behave as without the decorator."""

        @traced_execution(name="echo")
        def echo():
            received = yield "ready"
            try:
                yield received * 2
            except KeyError:
                yield "caught"
            return "finished"

        g = echo()
        assert "ready" == next(g)
        assert 42 == g.send(21)
        assert "caught" == g.throw(KeyError("k"))
        with pytest.raises(StopIteration) as info:
            next(g)
        assert "finished" == info.value.value

        assert "success" == one(db, "echo")["status"]

    def test_error_in_generator_body(self, db: str) -> None:
        """An exception raised by the body after some items gives status error."""

        @traced_execution(name="gen")
        def gen():
            yield 1
            raise ValueError("bad item")

        g = gen()
        assert 1 == next(g)
        with pytest.raises(ValueError, match="bad item"):
            next(g)

        row = one(db, "gen")
        assert "error" == row["status"]
        assert "ValueError" == row["error_type"]

    def test_current_only_while_the_body_runs(self, db: str) -> None:
        """Body work is a child of the generator; consumer work between items is not."""

        @traced_execution(name="step")
        def step(where):
            return where

        @traced_execution(name="gen")
        def gen():
            yield current_execution().execution_id
            step("body")
            yield 2

        with execution("consumer") as consumer:
            g = gen()
            gen_id = next(g)
            assert consumer is current_execution()
            step("consumer")
            assert [2] == list(g)

        steps = {decoded(r["inputs"])["where"]: r for r in rows(db, "name = 'step'")}
        gen_row = one(db, "gen")
        assert gen_row["execution_id"] == gen_id
        assert consumer.execution_id == gen_row["parent_execution_id"]
        assert gen_id == steps["body"]["parent_execution_id"]
        assert consumer.execution_id == steps["consumer"]["parent_execution_id"]

    def test_consumer_outside_any_execution_makes_roots(self, db: str) -> None:
        """Between items, with no outer execution, nothing is current and calls are roots."""

        @traced_execution(name="step")
        def step():
            return 1

        @traced_execution(name="gen")
        def gen():
            yield 1
            yield 2

        g = gen()
        next(g)
        assert current_execution() is None
        step()
        list(g)

        assert one(db, "step")["parent_execution_id"] is None

    def test_async_generator_current_only_while_the_body_runs(self, db: str) -> None:
        """Same as for generators, for an async generator consumed with async for."""

        @traced_execution(name="step")
        async def step(where):
            return where

        @traced_execution(name="agen")
        async def agen():
            yield current_execution().execution_id
            await step("body")
            yield 2

        async def main():
            async with execution("consumer") as consumer:
                items = []
                async for item in agen():
                    items.append(item)
                    assert consumer is current_execution()
                    await step("consumer")
            return consumer, items

        consumer, items = asyncio.run(main())

        agen_row = one(db, "agen")
        assert [agen_row["execution_id"], 2] == items
        assert consumer.execution_id == agen_row["parent_execution_id"]
        parents: dict[str, set[str]] = {}
        for r in rows(db, "name = 'step'"):
            parents.setdefault(decoded(r["inputs"])["where"], set()).add(r["parent_execution_id"])
        assert {"body": {agen_row["execution_id"]}, "consumer": {consumer.execution_id}} == parents


def _doc_plain(a, b=1):
    """Plain doc."""
    return a


async def _doc_coroutine(a, b=1):
    """Coroutine doc."""
    return a


def _doc_generator(a, b=1):
    """Generator doc."""
    yield a


async def _doc_agenerator(a, b=1):
    """Async generator doc."""
    yield a


class TestIntrospection:
    """The decorated callable looks like the original to inspect and to tools."""

    @pytest.mark.parametrize(
        ("func", "predicate"),
        [
            (_doc_plain, None),
            (_doc_coroutine, inspect.iscoroutinefunction),
            (_doc_generator, inspect.isgeneratorfunction),
            (_doc_agenerator, inspect.isasyncgenfunction),
        ],
        ids=["function", "async-function", "generator", "async-generator"],
    )
    @pytest.mark.parametrize("form", ["bare", "called"])
    def test_metadata_preserved(
        self, func: Callable[..., Any], predicate: Callable[[Any], bool] | None, form: str
    ) -> None:
        """signature, the inspect predicates, __name__, __qualname__, __doc__, __wrapped__."""
        decorated = traced_execution(func) if form == "bare" else traced_execution(name="n")(func)

        assert decorated is not func
        assert inspect.signature(func) == inspect.signature(decorated)
        assert "(a, b=1)" == str(inspect.signature(decorated))
        for check in (
            inspect.iscoroutinefunction,
            inspect.isgeneratorfunction,
            inspect.isasyncgenfunction,
        ):
            assert (check is predicate) == check(decorated), check.__name__
        assert func.__name__ == decorated.__name__
        assert func.__qualname__ == decorated.__qualname__
        assert func.__doc__ == decorated.__doc__
        assert func is decorated.__wrapped__

    def test_method_signatures(self) -> None:
        """Bound methods, classmethods and staticmethods keep their signatures."""
        case_by_id = {c.id: c for c in BARE}
        for case_id in (
            "method-via-instance",
            "classmethod-above-via-class",
            "classmethod-below-via-class",
            "staticmethod-above-via-class",
            "staticmethod-below-via-instance",
        ):
            assert "(x, y=2)" == str(inspect.signature(case_by_id[case_id].call)), case_id

    def test_method_name_and_doc(self) -> None:
        """A decorated method keeps __name__, __qualname__ and __doc__."""

        class Service:
            @traced_execution
            def run(self, job):
                """Run a job."""
                return job

            @traced_execution
            @classmethod
            def build(cls):
                """Build one."""
                return cls()

        assert "run" == Service.run.__name__
        assert "run" == Service().run.__name__
        assert Service.run.__qualname__.endswith("Service.run")
        assert "Run a job." == Service().run.__doc__
        assert "build" == Service.build.__name__
        assert "Build one." == Service.build.__doc__
        assert isinstance(Service.build(), Service)


class PipelineError(Exception):
    """A user exception defined outside builtins."""


class Stage:
    """Holds a nested exception class, to check the qualified name."""

    class FailedError(Exception):
        """Nested exception."""


def _raising_callables() -> list[Any]:
    @traced_execution(name="target")
    def plain(exc):
        raise exc

    @traced_execution(name="target")
    async def coroutine(exc):
        await asyncio.sleep(0)
        raise exc

    @traced_execution(name="target")
    def generator(exc):
        yield 1
        raise exc

    @traced_execution(name="target")
    async def agenerator(exc):
        yield 1
        raise exc

    return [
        pytest.param(plain, id="function"),
        pytest.param(lambda exc: asyncio.run(coroutine(exc)), id="async-function"),
        pytest.param(lambda exc: list(generator(exc)), id="generator"),
        pytest.param(lambda exc: asyncio.run(collect(agenerator(exc))), id="async-generator"),
    ]


class TestStatuses:
    """Exceptions, cancellation and explicit status, output and tags."""

    @pytest.mark.parametrize("call", _raising_callables())
    def test_exception_gives_error_and_is_reraised_unchanged(
        self, call: Callable[[BaseException], Any], db: str
    ) -> None:
        """error status, error_type/message/stack kept, the same exception object re-raised."""
        err = ValueError("boom 42")

        with pytest.raises(ValueError, match="boom 42") as info:
            call(err)

        assert err is info.value
        row = one(db, "target")
        assert "error" == row["status"]
        assert "ValueError" == row["error_type"]
        assert "boom 42" == row["error_message"]
        assert "Traceback (most recent call last)" in row["error_stack"]
        assert "raise exc" in row["error_stack"]
        assert "ValueError: boom 42" in row["error_stack"]
        assert "execlog/_wrappers.py" not in row["error_stack"]
        assert row["ended_at"] is not None

    def test_error_stacks_leave_out_execlogs_wrappers(self, db: str) -> None:
        """A stack recorded around traced calls (first calls run the Python wrapper, later ones
        may run in C) holds the user's frames only, in chained exceptions too."""

        @traced_execution
        def inner(n):
            raise KeyError(n)

        @traced_execution
        def middle(n):
            try:
                inner(n)
            except KeyError as exc:
                raise RuntimeError(f"middle {n}") from exc

        for n in range(3):
            with pytest.raises(RuntimeError), execution("outer"):
                middle(n)
        stacks = [row["error_stack"] for row in rows(db) if row["name"] == "outer"]
        assert 3 == len(stacks)
        for stack in stacks:
            assert "execlog/_wrappers.py" not in stack
            assert "in middle\n    inner(n)" in stack
            assert "in inner\n    raise KeyError(n)" in stack
            assert "direct cause of the following exception" in stack
        frames = [
            [line for line in stack.splitlines() if not line.startswith(("KeyError", "Runtime"))]
            for stack in stacks
        ]
        assert frames[0] == frames[2]  # the first call (Python wrapper) and a later one alike

    @pytest.mark.parametrize(
        ("exc", "expected_type"),
        [
            (PipelineError("p"), f"{__name__}.PipelineError"),
            (Stage.FailedError("f"), f"{__name__}.Stage.FailedError"),
            (json.JSONDecodeError("bad", "{", 0), "json.decoder.JSONDecodeError"),
            (KeyError("k"), "KeyError"),
        ],
        ids=["module-level", "nested-class", "stdlib", "builtin"],
    )
    def test_error_type_is_module_and_qualname(
        self, exc: Exception, expected_type: str, db: str
    ) -> None:
        """error_type is module.QualName, builtins by bare name."""

        @traced_execution(name="target")
        def target():
            raise exc

        with pytest.raises(type(exc)):
            target()

        assert expected_type == one(db, "target")["error_type"]

    def test_cancelled_task_is_cancelled(self, db: str) -> None:
        """A traced coroutine whose task is cancelled records status cancelled."""

        @traced_execution(name="target")
        async def target(started):
            started.set()
            await asyncio.sleep(30)

        async def main():
            started = asyncio.Event()
            task = asyncio.create_task(target(started))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert "cancelled" == one(db, "target")["status"]

    def test_cancelled_async_with_is_cancelled(self, db: str) -> None:
        """An async with block whose task is cancelled records status cancelled."""

        async def body(started):
            async with execution("target"):
                started.set()
                await asyncio.sleep(30)

        async def main():
            started = asyncio.Event()
            task = asyncio.create_task(body(started))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert "cancelled" == one(db, "target")["status"]

    def test_cancelled_error_raised_in_body(self, db: str) -> None:
        """asyncio.CancelledError raised by the body gives cancelled, not error."""

        @traced_execution(name="target")
        async def target():
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            asyncio.run(target())

        assert "cancelled" == one(db, "target")["status"]

    def test_keyboard_interrupt_in_function(self, db: str) -> None:
        """KeyboardInterrupt gives cancelled and is re-raised."""

        @traced_execution(name="target")
        def target():
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            target()

        assert "cancelled" == one(db, "target")["status"]

    @BLOCK_MODES
    def test_keyboard_interrupt_in_block(self, mode: str, db: str) -> None:
        """KeyboardInterrupt leaving a with/async with block gives cancelled."""

        def body(ex):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_block(mode, body, "target")

        assert "cancelled" == one(db, "target")["status"]

    def test_set_status_from_inside_a_traced_function(self, db: str) -> None:
        """current_execution().set_status('partial') overrides success; output still kept."""

        @traced_execution(name="target")
        def target():
            current_execution().set_status("partial")
            return [1, 2]

        assert [1, 2] == target()

        row = one(db, "target")
        assert "partial" == row["status"]
        assert [1, 2] == decoded(row["output"])

    def test_set_status_from_inside_an_async_function(self, db: str) -> None:
        """set_status works the same inside a coroutine."""

        @traced_execution(name="target")
        async def target():
            await asyncio.sleep(0)
            current_execution().set_status("partial")

        asyncio.run(target())

        assert "partial" == one(db, "target")["status"]

    @BLOCK_MODES
    def test_set_status_set_output_and_tag_on_a_block(self, mode: str, db: str) -> None:
        """set_status, set_output and tag (merging, JSON types kept) on the handle."""

        def body(ex):
            ex.tag(b=2, c=[1, "two"])
            ex.tag({"d": {"e": None}, "f": 1.5})
            ex.tag(g=True)
            ex.set_output({"rows": 3})
            ex.set_status("partial")

        run_block(mode, body, "target", tags={"a": 1, "b": "one"})

        row = one(db, "target")
        assert "partial" == row["status"]
        assert {"rows": 3} == decoded(row["output"])
        assert {
            "a": 1,
            "b": 2,
            "c": [1, "two"],
            "d": {"e": None},
            "f": 1.5,
            "g": True,
        } == decoded(row["tags"])

    def test_tag_inside_traced_function_merges_with_decorator_tags(self, db: str) -> None:
        """Tags added at run time merge with the decorator's static tags."""

        @traced_execution(name="target", tags={"team": "data"})
        def target():
            current_execution().tag(rows=3, ok=False)

        target()

        assert {"team": "data", "rows": 3, "ok": False} == decoded(one(db, "target")["tags"])

    def test_static_tags_are_not_shared_between_calls(self, db: str) -> None:
        """A tag added during one call does not leak into the next call's tags."""

        @traced_execution(name="target", tags={"team": "data"})
        def target(i):
            current_execution().tag(call=i)

        target(1)
        target(2)

        assert [{"team": "data", "call": 1}, {"team": "data", "call": 2}] == [
            decoded(r["tags"]) for r in rows(db, "name = 'target'")
        ]

    def test_set_status_rejects_unknown_values(self, db: str) -> None:
        """set_status with a value that is not a status raises ValueError; nothing changes."""
        with execution("target") as ex, pytest.raises(ValueError, match="bogus"):
            ex.set_status("bogus")

        assert "success" == one(db, "target")["status"]

    def test_set_output_in_traced_function(self, db: str) -> None:
        """set_output inside a traced function records the given value."""

        @traced_execution(name="target")
        def target():
            current_execution().set_output({"summary": True})

        assert target() is None

        assert {"summary": True} == decoded(one(db, "target")["output"])


class TestExecutionBlock:
    """``with execution(...)`` and ``async with execution(...)``."""

    @BLOCK_MODES
    def test_defaults(self, mode: str, db: str) -> None:
        """kind defaults to block; inputs and tags are recorded; status success."""

        def body(ex):
            assert ex is current_execution()
            return ex

        ex = run_block(mode, body, "nightly", inputs={"day": "2026-11-21"}, tags={"team": "x"})

        row = one(db, "nightly")
        assert ex.execution_id == row["execution_id"]
        assert "block" == row["kind"]
        assert "success" == row["status"]
        assert {"day": "2026-11-21"} == decoded(row["inputs"])
        assert {"team": "x"} == decoded(row["tags"])
        assert "manual" == row["trigger_kind"]
        assert row["parent_execution_id"] is None
        assert ex.execution_id == ex.correlation_id
        assert ex.parent_execution_id is None

    @BLOCK_MODES
    def test_kind_and_trigger_kind(self, mode: str, db: str) -> None:
        """kind and trigger_kind given to execution() are recorded."""
        run_block(mode, lambda ex: None, "etl", kind="workflow", trigger_kind="scheduled")

        row = one(db, "etl")
        assert "workflow" == row["kind"]
        assert "scheduled" == row["trigger_kind"]

    @BLOCK_MODES
    def test_error_in_block(self, mode: str, db: str) -> None:
        """An exception leaving the block gives error and passes through unchanged."""
        err = PipelineError("stage 3")

        def body(ex):
            raise err

        with pytest.raises(PipelineError) as info:
            run_block(mode, body, "target")

        assert err is info.value
        row = one(db, "target")
        assert "error" == row["status"]
        assert f"{__name__}.PipelineError" == row["error_type"]
        assert "stage 3" == row["error_message"]
        assert "PipelineError: stage 3" in row["error_stack"]

    @BLOCK_MODES
    def test_traced_call_inside_is_child(self, mode: str, db: str) -> None:
        """A traced call inside the block is recorded as its child."""

        @traced_execution(name="inner")
        def inner():
            return current_execution().parent_execution_id

        ex = run_block(mode, lambda ex: (ex, inner())[0], "outer")

        assert ex.execution_id == one(db, "inner")["parent_execution_id"]

    def test_current_execution_is_innermost(self, db: str) -> None:
        """current_execution() is the innermost live handle and None outside."""
        assert current_execution() is None
        with execution("a") as a:
            assert a is current_execution()
            with execution("b") as b:
                assert b is current_execution()
            assert a is current_execution()
        assert current_execution() is None

    def test_current_execution_async(self, db: str) -> None:
        """In async code, current_execution() follows the awaiting task."""

        @traced_execution(name="inner")
        async def inner():
            return current_execution()

        async def main():
            assert current_execution() is None
            async with execution("a") as a:
                handle = await inner()
                assert a is current_execution()
            assert current_execution() is None
            return a, handle

        a, handle = asyncio.run(main())

        assert "inner" == handle.name
        assert a.execution_id == handle.parent_execution_id
        assert current_execution() is None


class TestSwitches:
    """configure(enabled=...) and EXECLOG_DISABLED."""

    def test_configure_disabled_block(self, db: str) -> None:
        """With enabled=False an execution block runs but records nothing."""
        execlog.configure(enabled=False)
        with execution("off"):
            value = 1

        execlog.configure(enabled=True)
        with execution("on"):
            pass

        assert 1 == value
        assert ["on"] == [r["name"] for r in rows(db)]

    def test_disabled_error_still_raises(self, db: str) -> None:
        """With enabled=False exceptions pass through unchanged."""
        execlog.configure(enabled=False)

        @traced_execution
        def target(exc):
            raise exc

        err = PipelineError("x")
        with pytest.raises(PipelineError) as info:
            target(err)

        assert err is info.value

    @pytest.mark.parametrize(
        "func",
        [_doc_plain, _doc_coroutine, _doc_generator, _doc_agenerator],
        ids=["function", "async-function", "generator", "async-generator"],
    )
    def test_env_disabled_returns_the_function_itself(
        self, func: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EXECLOG_DISABLED=1 at decoration time: the decorator returns the callable unchanged."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()  # as a process started with EXECLOG_DISABLED=1

        assert func is traced_execution(func)
        assert func is traced_execution(name="n", kind="k")(func)

    def test_env_disabled_methods_left_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """EXECLOG_DISABLED=1 leaves methods, classmethods and staticmethods as they were."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()

        def method(self):
            return 1

        cm = classmethod(method)
        sm = staticmethod(method)

        assert method is traced_execution(method)
        assert cm is traced_execution(cm)
        assert sm is traced_execution(sm)

    def test_env_disabled_records_nothing(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
    ) -> None:
        """A process started with EXECLOG_DISABLED=1 records no execution block."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()
        path = str(tmp_path / "off.db")
        execlog.configure(db=path)

        with execution("off"):
            pass

        assert execlog.flush(timeout=10)
        assert [] == (rows(path) if (tmp_path / "off.db").exists() else [])

    def test_explicit_enable_wins_over_env(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
    ) -> None:
        """configure(enabled=True) wins over EXECLOG_DISABLED: decorated calls record."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()
        path = str(tmp_path / "on.db")
        execlog.configure(db=path, enabled=True)

        def func(x):
            return x * 2

        decorated = traced_execution(name="func")(func)
        assert decorated is not func
        assert 4 == decorated(2)
        with execution("block"):
            pass

        found = {r["name"]: r for r in rows(path)}
        assert {"func", "block"} == set(found)
        assert {"x": 2} == decoded(found["func"]["inputs"])
        assert 4 == decoded(found["func"]["output"])
