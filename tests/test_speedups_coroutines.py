"""A traced ``async def`` on the C path: the coroutine protocol, against the Python path.

On the C path a traced ``async def`` is an ``execlog._speedups.TracedFunction`` and a call
returns a ``TracedCoroutine`` that delegates to the function's own coroutine; on the Python
path it is an ``async def`` wrapper. Each scenario here drives both the same way (``send``,
``throw``, ``close``, garbage collection, ``await``) and compares what the program sees (values,
exceptions, warnings) and what is stored.
"""

from __future__ import annotations

import asyncio
import collections.abc
import copy
import gc
import inspect
import pickle
import sys
import typing
import warnings
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows
from test_speedups import SPEEDUPS, comparable, decorate_both, python_begins, uses_c

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["python_begins"]  # the fixture, shared with test_speedups


class Suspend:
    """An awaitable that suspends once, yielding ``"suspended"``; it evaluates to what is sent
    back. Driven by hand (``send``), not by an event loop."""

    def __await__(self) -> Any:
        sent = yield "suspended"
        return sent


async def pause(x):
    got = await Suspend()
    return (x, got)


async def pause_and_catch(x):
    try:
        await Suspend()
    except KeyError as exc:
        return ("caught", exc.args)
    return "not thrown"


async def returns(value):
    return value


async def fails(x):
    raise ValueError(f"failed {x}")


@execlog.traced_execution
async def module_level(x: int) -> int:
    """Decorated at import: pickled by reference."""
    return x + 1


def outcome(action: Callable[[], Any]) -> tuple[Any, ...]:
    """What an action gave: ("returned", value), ("stopped", value) or ("raised", type, text)."""
    try:
        return ("returned", action())
    except StopIteration as stop:
        return ("stopped", type(stop.value).__name__, repr(stop.value))
    except BaseException as exc:  # GeneratorExit and the like are outcomes too
        return ("raised", type(exc).__name__, str(exc))


def run_to_end(coro: Any, value: Any = None) -> Any:
    """Resume ``coro`` with ``value``; what it returns (it must not suspend again)."""
    try:
        coro.send(value)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("suspended again")


def warm_up(traced: Any) -> None:
    """A function's first call runs in Python (it starts the writer): make it before comparing."""
    coro = traced(0)
    try:
        while True:
            coro.send(None)
    except StopIteration:
        pass
    except Exception:  # failing functions fail here too
        return


@dataclass
class Scenario:
    label: str
    func: Callable[..., Any]
    drive: Callable[[Any], Any]


def _never_awaited(traced: Any) -> Any:
    coro = traced(1)
    del coro
    gc.collect()


def _closed_before_start(traced: Any) -> Any:
    return traced(1).close()


def _thrown_before_start(traced: Any) -> Any:
    return traced(1).throw(LookupError("early"))


def _closed_while_suspended(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    return coro.close()


def _dropped_while_suspended(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    del coro
    gc.collect()


def _thrown_and_caught(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    return coro.throw(KeyError("k"))


def _thrown_and_raised(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    return coro.throw(RuntimeError("thrown in"))


def _thrown_old_signature(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: the 3-argument form
        return coro.throw(RuntimeError, RuntimeError("three args"), None)


def _sent_a_value(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    return coro.send(41)


def _non_none_first(traced: Any) -> Any:
    coro = traced(1)
    first = outcome(lambda: coro.send(5))
    assert "suspended" == coro.send(None)  # still unstarted after the refusal
    return first, outcome(lambda: coro.send("later"))


def _awaited_twice(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)
    done = outcome(lambda: coro.send(2))
    return done, outcome(lambda: coro.send(None))


def _tuple_returned(traced: Any) -> Any:
    return traced((1, 2)).send(None)


def _exception_returned(traced: Any) -> Any:
    return traced(ValueError("a value")).send(None)


def _none_returned(traced: Any) -> Any:
    return traced(None).send(None)


def _next_and_iter(traced: Any) -> Any:
    coro = traced(1)
    awaitable = coro.__await__()
    assert "suspended" == next(awaitable)
    return awaitable.send(3)


def _second_awaiter(traced: Any) -> Any:
    coro = traced(1)
    assert "suspended" == coro.send(None)

    async def other() -> Any:
        return await coro

    second = other()
    try:
        return outcome(lambda: second.send(None)), outcome(lambda: coro.send(5))
    finally:
        second.close()


def _delegating_await(traced: Any) -> Any:
    class Wrapped:
        """An awaitable whose __await__ delegates with ``yield from``, as libraries do."""

        def __init__(self, coro: Any) -> None:
            self.coro = coro

        def __await__(self) -> Any:
            return (yield from self.coro.__await__())

    async def outer() -> Any:
        return await Wrapped(traced(1))

    coro = outer()
    assert "suspended" == coro.send(None)
    return coro.send(8)


def _raised(traced: Any) -> Any:
    return traced(7).send(None)


def _bad_arguments(traced: Any) -> Any:
    return traced(1, 2, 3).send(None)


def _unknown_keyword(traced: Any) -> Any:
    return traced(1, nope=2).send(None)


SCENARIOS = [
    Scenario("never awaited", pause, _never_awaited),
    Scenario("closed before it starts", pause, _closed_before_start),
    Scenario("thrown into before it starts", pause, _thrown_before_start),
    Scenario("closed while suspended", pause, _closed_while_suspended),
    Scenario("dropped while suspended", pause, _dropped_while_suspended),
    Scenario("thrown into, caught, returns", pause_and_catch, _thrown_and_caught),
    Scenario("thrown into, raises", pause, _thrown_and_raised),
    Scenario("thrown into, three-argument form", pause, _thrown_old_signature),
    Scenario("resumed with a value", pause, _sent_a_value),
    Scenario("first send not None", pause, _non_none_first),
    Scenario("resumed after it returned", pause, _awaited_twice),
    Scenario("returns a tuple", returns, _tuple_returned),
    Scenario("returns an exception", returns, _exception_returned),
    Scenario("returns None", returns, _none_returned),
    Scenario("driven through __await__", pause, _next_and_iter),
    Scenario("awaited by a second awaiter while suspended", pause, _second_awaiter),
    Scenario("awaited through yield from __await__()", pause, _delegating_await),
    Scenario("raises", fails, _raised),
    Scenario("called with too many arguments", pause, _bad_arguments),
    Scenario("called with an unknown keyword", pause, _unknown_keyword),
]


def _run(traced: Any, drive: Callable[[Any], Any]) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = outcome(lambda: drive(traced))
        gc.collect()
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


class TestProtocolMatchesThePythonPath:
    @pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
    def test_same_outcome_warnings_and_rows(
        self,
        db: str,
        monkeypatch: pytest.MonkeyPatch,
        python_begins: list[str],
        scenario: Scenario,
    ) -> None:
        """Driven alike, both paths give the same values, exceptions, warnings and rows."""
        c_traced, py_traced = decorate_both(monkeypatch, scenario.func)
        assert type(c_traced) is SPEEDUPS.TracedFunction
        warm_up(c_traced)
        warm_up(py_traced)
        seen = {row["execution_id"] for row in rows(db)}

        begun = len(python_begins)
        c_result = _run(c_traced, scenario.drive)
        c_begun = python_begins[begun:]
        c_rows = [row for row in rows(db) if row["execution_id"] not in seen]
        seen |= {row["execution_id"] for row in c_rows}
        py_result = _run(py_traced, scenario.drive)
        py_rows = [row for row in rows(db) if row["execution_id"] not in seen]

        assert py_result == c_result
        assert [comparable(row) for row in py_rows] == [comparable(row) for row in c_rows]
        if scenario.drive not in (_bad_arguments, _unknown_keyword):
            assert [] == c_begun, "expected the C path"
        assert execlog.current_execution() is None
        assert set() == execlog._recorder.RECORDER.channel.live

    def test_recorded_statuses(self, db: str, python_begins: list[str]) -> None:
        """What the scenarios store, spelled out for the C path."""

        traced = execlog.traced_execution(name="paused")(pause)
        warm_up(traced)
        seen = {row["execution_id"] for row in rows(db)}
        for drive in (
            _closed_before_start,
            _closed_while_suspended,
            _thrown_and_raised,
            _sent_a_value,
        ):
            outcome(lambda drive=drive: drive(traced))
        found = [row for row in rows(db) if row["execution_id"] not in seen]
        assert [("partial", "GeneratorExit"), ("error", "RuntimeError"), ("success", None)] == [
            (row["status"], row["error_type"] and row["error_type"].split(".")[-1]) for row in found
        ]
        assert "[1,41]" == found[-1]["output"]


class TestLooksLikeAFunction:
    def test_introspection(self) -> None:
        """inspect and asyncio see a coroutine function, with the function's metadata."""

        async def fetch(url: str, *, retries: int = 3) -> bytes:
            """Fetch it."""
            return b""

        fetch.custom = "attribute"  # type: ignore[attr-defined]
        traced = execlog.traced_execution(fetch)
        assert uses_c(traced)
        assert inspect.iscoroutinefunction(traced)
        if sys.version_info < (3, 14):  # deprecated there, still widely used
            assert asyncio.iscoroutinefunction(traced)
        assert inspect.isfunction(traced)
        assert not inspect.isgeneratorfunction(traced)
        assert fetch is traced.__wrapped__
        assert inspect.signature(fetch) == inspect.signature(traced)
        assert ("fetch", fetch.__qualname__, "Fetch it.", __name__) == (
            traced.__name__,
            traced.__qualname__,
            traced.__doc__,
            traced.__module__,
        )
        assert fetch.__code__ is traced.__code__
        assert fetch.__kwdefaults__ == traced.__kwdefaults__
        assert fetch.__globals__ is traced.__globals__
        assert "attribute" == traced.custom
        assert {"url": str, "retries": int, "return": bytes} == typing.get_type_hints(traced)
        assert repr(traced).startswith(f"<function {fetch.__qualname__} at 0x")
        traced.extra = 1
        assert 1 == traced.extra
        assert not hasattr(fetch, "extra")

    def test_the_coroutine_looks_like_a_coroutine(self) -> None:
        """What a call returns passes asyncio's and inspect's coroutine checks."""

        @execlog.traced_execution
        async def fetch(x):
            return x

        coro = fetch(1)
        try:
            assert inspect.iscoroutine(coro)
            assert asyncio.iscoroutine(coro)
            assert inspect.isawaitable(coro)
            assert isinstance(coro, collections.abc.Coroutine)
            assert fetch.__code__ is coro.cr_code
            assert fetch.__qualname__ == coro.__qualname__
            assert coro.cr_frame is not None
            assert not coro.cr_running
            assert repr(coro).startswith(f"<coroutine object {fetch.__qualname__} at 0x")
            assert coro is weakref.ref(coro)()
            assert not isinstance(coro, collections.abc.Iterator)
            assert not isinstance(coro, collections.abc.Iterable)
            with pytest.raises(TypeError):
                iter(coro)
        finally:
            coro.close()

    def test_pickle_copy_and_weakref(self) -> None:
        """Pickled by reference like a function; copies are itself; weak references work."""
        assert uses_c(module_level)
        assert module_level is pickle.loads(pickle.dumps(module_level))
        assert module_level is copy.copy(module_level)
        assert module_level is copy.deepcopy(module_level)
        assert module_level is weakref.ref(module_level)()
        assert 3 == asyncio.run(module_level(2))

    def test_bound_as_a_method(self, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Set on a class after decoration, it binds to instances as a function does."""

        async def describe(owner, n):
            return f"{owner.name}:{n}"

        c_traced, py_traced = decorate_both(monkeypatch, describe)

        class Named:
            name = "x"
            via_c = c_traced
            via_python = py_traced
            via_classmethod = classmethod(c_traced)

        thing = Named()
        assert "x:1" == asyncio.run(thing.via_c(1))
        assert "x:1" == asyncio.run(thing.via_c(1))
        assert "x:2" == asyncio.run(thing.via_python(2))
        assert "x:3" == asyncio.run(Named.via_c(thing, 3))
        assert "x:4" == asyncio.run(thing.via_classmethod(4))
        assert c_traced is Named.__dict__["via_c"].__get__(None, Named)
        assert 5 == len(rows(db))


class TestMarkedCoroutineFunctions:
    @pytest.mark.skipif(
        not hasattr(inspect, "markcoroutinefunction"), reason="inspect.markcoroutinefunction: 3.12+"
    )
    def test_a_marked_plain_function_is_awaited_by_the_python_path(self, db: str) -> None:
        """A plain def marked as a coroutine function returns some awaitable: still traced."""

        def returns_future(x):
            future = asyncio.get_running_loop().create_future()
            future.set_result(x + 1)
            return future

        marked = inspect.markcoroutinefunction(returns_future)  # type: ignore[attr-defined]
        traced = execlog.traced_execution(marked)
        assert inspect.iscoroutinefunction(traced)

        async def main() -> list[int]:
            return [await traced(n) for n in range(3)]

        assert [1, 2, 3] == asyncio.run(main())
        assert ["1", "2", "3"] == [row["output"] for row in rows(db)]

    def test_the_c_coroutine_kind_needs_an_async_def(self) -> None:
        """TracedFunction('coroutine', ...) refuses a plain function's CallSpec."""

        def plain(x):
            return x

        spec = execlog.traced_execution(plain)._execlog_target
        with pytest.raises(TypeError, match="async def"):
            SPEEDUPS.TracedFunction("coroutine", spec)


class TestDrivenByAsyncio:
    def test_tasks_gather_and_cancellation(self, db: str, python_begins: list[str]) -> None:
        """Tasks, gather and wait_for take it as a coroutine; lineage follows the tasks."""

        @execlog.traced_execution
        async def leaf(k):
            await asyncio.sleep(0)
            return k

        @execlog.traced_execution
        async def parent():
            values = await asyncio.gather(leaf(1), leaf(2), asyncio.create_task(leaf(3)))
            values.append(await asyncio.wait_for(leaf(4), timeout=10))
            return values

        asyncio.run(leaf(0))
        assert [1, 2, 3, 4] == asyncio.run(parent())
        found = [row for row in rows(db) if row["parent_execution_id"] is not None]
        (root,) = [row for row in rows(db) if row["name"] == parent.__qualname__]
        assert 4 == len(found)
        assert {root["execution_id"]} == {row["parent_execution_id"] for row in found}

    def test_under_a_trace_function(self, db: str, python_begins: list[str]) -> None:
        """With sys.settrace (a debugger, coverage), await resumes it through its methods."""

        @execlog.traced_execution
        async def value(x):
            await asyncio.sleep(0)
            return x

        async def main() -> list[Any]:
            return [await value((1, 2)), await value(None), await value(ValueError("v"))]

        asyncio.run(value(0))
        previous = sys.gettrace()
        sys.settrace(lambda *args: None)
        try:
            results = asyncio.run(main())
        finally:
            sys.settrace(previous)
        assert (1, 2) == results[0]
        assert results[1] is None
        assert isinstance(results[2], ValueError)
        assert ["success"] * 4 == [row["status"] for row in rows(db)]

    def test_resumed_from_inside_its_own_start(self, db: str, python_begins: list[str]) -> None:
        """An argument whose repr resumes the same coroutine gets an error, not a crash."""

        class Sneaky:
            coro: Any = None
            error: str = ""

            def __repr__(self) -> str:
                try:
                    self.coro.send(None)
                except ValueError as exc:
                    Sneaky.error = str(exc)
                return "Sneaky()"

        @execlog.traced_execution
        async def take(arg):
            return 1

        asyncio.run(take(0))
        sneaky = Sneaky()
        coro = take(sneaky)
        sneaky.coro = coro
        assert 1 == run_to_end(coro)
        assert "coroutine already executing" == Sneaky.error
        assert ["success", "success"] == [row["status"] for row in rows(db)]

    def test_disabled_runs_the_function(self, db: str) -> None:
        """With recording off the coroutine still runs, unrecorded."""

        @execlog.traced_execution
        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        assert 2 == asyncio.run(double(1))
        execlog.configure(enabled=False)
        try:
            assert 4 == asyncio.run(double(2))
            coro = double(3)
            assert "suspended" != coro.send(None)  # a Future from asyncio.sleep(0)
            coro.close()
        finally:
            execlog.configure(enabled=True)
        assert 1 == len(rows(db))
