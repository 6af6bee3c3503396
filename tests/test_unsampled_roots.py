"""Unsampled roots and blocks: what their mark on the context leaves behind, and what it must not.

An unsampled root runs its function with ``current`` holding the unsampled stand-in. The C path
makes that change by swapping the context's mapping of variables (``mark_enter`` in
``_speedups.c``) rather than by ``PyContextVar_Set``/``Reset``, so these tests check what the
public calls guarantee: variables the function sets stay set, contexts copied inside keep the
mark after the root returns, nested contexts and other threads do not see each other's marks.
Then ``async def`` and generator roots, and blocks (left out as roots, inside unsampled trees,
and begun while recording is off), which the C path now runs too. Each test runs on the C path,
on the C path using the public calls, and on the pure-Python path.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import names
from execlog._context import current

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator

pytestmark = pytest.mark.usefixtures("sampling_implementation")


def make_probe() -> Callable[[], bool]:
    """A traced function telling whether its call is recorded (decorated in the test, so on
    the path the test runs)."""

    @execlog.traced_execution
    def probe() -> bool:
        execution = execlog.current_execution()
        return execution is not None and execution.sampled

    return probe


def test_a_variable_the_function_sets_stays_set(db: str) -> None:
    probe = make_probe()
    user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)

    @execlog.traced_execution
    def root(value: int) -> int:
        user.set(value)
        return probe()

    execlog.configure(sample_rate=0.0)
    for value in range(1, 4):
        assert root(value) is False
        assert user.get() == value
        assert current.get() is None
    execlog.configure(sample_rate=1.0)
    assert root(9) is True
    assert names(db) == ["probe", "root"]


def test_a_variable_set_and_reset_inside(db: str) -> None:
    probe = make_probe()
    user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)

    @execlog.traced_execution
    def root() -> bool:
        token = user.set(7)
        inside = probe()
        user.reset(token)
        return inside

    execlog.configure(sample_rate=0.0)
    assert [root() for _ in range(3)] == [False, False, False]
    assert user.get() == 0
    assert current.get() is None
    assert probe() is False  # still unsampled: probe is a root at rate 0
    execlog.configure(sample_rate=1.0)
    assert probe() is True


def test_an_exception_after_setting_a_variable(db: str) -> None:
    user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)

    @execlog.traced_execution
    def root() -> None:
        user.set(3)
        raise KeyError("boom")

    execlog.configure(sample_rate=0.0)
    for _ in range(2):
        with pytest.raises(KeyError, match="boom"):
            root()
        assert current.get() is None
    assert user.get() == 3
    execlog.flush()
    assert names(db) == []


def test_a_context_copied_inside_keeps_the_mark_after_the_root_returns(db: str) -> None:
    probe = make_probe()
    copied: list[contextvars.Context] = []

    @execlog.traced_execution
    def root() -> None:
        copied.append(contextvars.copy_context())

    execlog.configure(sample_rate=0.0)
    root()
    root()
    execlog.configure(sample_rate=1.0)
    assert [ctx.run(probe) for ctx in copied] == [False, False]
    assert probe() is True
    assert names(db) == ["probe"]


def test_roots_in_nested_contexts(db: str) -> None:
    """A root runs another root in a fresh context and in a copy of its own; each is marked
    only where it runs, and every context is as it was afterwards."""
    probe = make_probe()
    user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)
    seen: list[Any] = []

    @execlog.traced_execution
    def inner(tag: str) -> bool:
        user.set(user.get() + 1)
        return probe()

    @execlog.traced_execution
    def outer() -> bool:
        seen.append(contextvars.Context().run(inner, "fresh"))
        seen.append(contextvars.copy_context().run(inner, "copy"))
        seen.append(inner("same"))
        seen.append(current.get())
        return probe()

    execlog.configure(sample_rate=0.0)
    for _ in range(3):
        assert outer() is False
        assert current.get() is None
    assert seen[:3] == [False, False, False]
    assert seen[3] is not None
    assert seen[3].sampled is False
    assert user.get() == 3  # only "same" ran in this context, once per outer()
    execlog.configure(sample_rate=1.0)
    assert contextvars.Context().run(probe) is True
    assert probe() is True


def test_threads_alternating_roots(db: str) -> None:
    """Two threads call unsampled roots in turn (each replaces the other's kept mapping)."""
    probe = make_probe()

    @execlog.traced_execution
    def root(i: int) -> bool:
        return probe()

    errors: list[str] = []
    turn = [threading.Event(), threading.Event()]

    def work(me: int) -> None:
        for i in range(200):
            turn[me].wait()
            turn[me].clear()
            if root(i) is not False or current.get() is not None:
                errors.append(f"thread {me} call {i}")
            turn[1 - me].set()

    execlog.configure(sample_rate=0.0)
    threads = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    turn[0].set()
    for thread in threads:
        thread.join()
    assert errors == []
    execlog.configure(sample_rate=1.0)
    assert probe() is True
    assert names(db) == ["probe"]


def test_tasks_made_by_an_unsampled_root_run_after_it_returns(db: str) -> None:
    probe = make_probe()

    @execlog.traced_execution
    async def later() -> bool:
        await asyncio.sleep(0)
        return probe()

    tasks: list[asyncio.Task[bool]] = []

    @execlog.traced_execution
    def root() -> None:
        tasks.append(asyncio.get_running_loop().create_task(later()))

    async def main() -> list[bool]:
        for _ in range(3):
            root()
        execlog.configure(sample_rate=1.0)  # the tasks still follow their roots
        return list(await asyncio.gather(*tasks))

    execlog.configure(sample_rate=0.0)
    assert asyncio.run(main()) == [False, False, False]
    assert names(db) == []


def test_collections_that_reconfigure_during_roots(db: str) -> None:
    """A gc callback reconfigures execlog and runs roots of its own while roots run (the
    collector may run at any allocation: the kept mapping is replaced under a root).

    The callback's roots run in contexts of their own: one that set a variable of the context
    whose variable is being set (the collector runs inside ``ContextVar.set``) would make
    CPython itself read freed memory, execlog or not (``contextvar_set`` holds no reference
    to the mapping it is extending).
    """
    probe = make_probe()
    user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)
    calls = [0]

    @execlog.traced_execution
    def nested() -> bool:
        return probe()

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and calls[0] < 200:
            calls[0] += 1
            execlog.configure(sample_rate=0.0)
            contextvars.Context().run(nested)
            contextvars.copy_context().run(nested)

    @execlog.traced_execution
    def root(i: int) -> bool:
        junk: list[Any] = [[] for _ in range(20)]
        junk.append(junk)  # a cycle for the collector
        user.set(i)
        return probe()

    execlog.configure(sample_rate=0.0)
    threshold = gc.get_threshold()
    gc.set_threshold(5)
    gc.callbacks.append(callback)
    try:
        results = {root(i) for i in range(2_000)}
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*threshold)
    assert calls[0] > 0
    assert results == {False}
    assert current.get() is None
    assert user.get() == 1_999
    execlog.configure(sample_rate=1.0)
    assert probe() is True
    assert names(db) == ["probe"]


class TestAsyncRoots:
    """An unsampled ``async def`` root keeps its mark from its first resume to its end."""

    def test_the_mark_lasts_across_awaits_and_comes_off(self, db: str) -> None:
        probe = make_probe()
        user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)

        @execlog.traced_execution
        async def root(i: int) -> list[bool]:
            seen = [probe()]
            await asyncio.sleep(0)
            user.set(i)
            seen.append(probe())
            seen.append(await asyncio.to_thread(contextvars.copy_context().run, probe))
            return seen

        async def main() -> list[Any]:
            results: list[Any] = [await root(1)]
            results.append(current.get())
            results.append(await root(2))
            return results

        execlog.configure(sample_rate=0.0)
        for _ in range(2):
            first, after, second = asyncio.run(main())
            assert first == second == [False, False, False]
            assert after is None
        execlog.configure(sample_rate=1.0)
        assert probe() is True
        assert names(db) == ["probe"]

    def test_an_exception_and_a_cancellation(self, db: str) -> None:
        probe = make_probe()

        @execlog.traced_execution
        async def failing() -> None:
            await asyncio.sleep(0)
            raise KeyError("boom")

        @execlog.traced_execution
        async def waiting(ready: asyncio.Event) -> None:
            ready.set()
            await asyncio.sleep(10)

        async def main() -> list[Any]:
            out: list[Any] = []
            with pytest.raises(KeyError):
                await failing()
            out.append(current.get())
            ready = asyncio.Event()
            task = asyncio.get_running_loop().create_task(waiting(ready))
            await ready.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            out.append(current.get())
            out.append(probe())
            return out

        execlog.configure(sample_rate=0.0)
        assert asyncio.run(main()) == [None, None, False]
        execlog.configure(sample_rate=1.0)
        assert asyncio.run(main()) == [None, None, True]
        assert names(db) == ["failing", "probe", "waiting"]

    def test_closed_or_dropped_while_suspended(self, db: str) -> None:
        """Driven by hand: close(), and dropping the coroutine, take the mark off where it was
        made, after the coroutine's own ``finally`` ran with it."""
        probe = make_probe()
        in_finally: list[bool] = []

        @execlog.traced_execution
        async def root() -> None:
            try:
                await asyncio.sleep(0)
            finally:
                in_finally.append(probe())

        execlog.configure(sample_rate=0.0)
        coroutine = root()
        coroutine.send(None)
        assert current.get() is not None
        coroutine.close()
        assert current.get() is None

        coroutine = root()
        coroutine.send(None)
        del coroutine
        gc.collect()
        assert current.get() is None
        assert in_finally == [False, False]
        execlog.configure(sample_rate=1.0)
        assert probe() is True
        assert names(db) == ["probe"]

    def test_begun_in_one_context_and_ended_in_another(self, db: str) -> None:
        probe = make_probe()

        @execlog.traced_execution
        async def root() -> bool:
            await asyncio.sleep(0)
            return probe()

        execlog.configure(sample_rate=0.0)
        first, second = contextvars.Context(), contextvars.Context()
        coroutine = root()
        first.run(coroutine.send, None)
        with pytest.raises(StopIteration) as stop:
            second.run(coroutine.send, None)
        assert stop.value.value is False
        execlog.configure(sample_rate=1.0)
        assert second.run(probe) is True  # the mark never was there
        assert probe() is True


class TestCallableObjectRoots:
    """A callable object (wrapt's wrapper): on the C path its root is drawn in C, which makes
    the stand-in current; the wrapper ends it."""

    def test_a_callable_object(self, db: str) -> None:
        probe = make_probe()
        user: contextvars.ContextVar[int] = contextvars.ContextVar("user", default=0)

        class Handler:
            def __call__(self, value: int) -> bool:
                user.set(value)
                return probe()

        handler = execlog.traced_execution(Handler(), name="handler", sample_rate=0.0)
        for value in (1, 2):
            assert handler(value) is False  # the probe inside follows the unsampled root
            assert user.get() == value
            assert current.get() is None
        failing = execlog.traced_execution(Handler(), name="failing", sample_rate=0.0)
        with pytest.raises(TypeError):
            failing("not a number", "too many")
        assert current.get() is None
        assert probe() is True
        assert names(db) == ["probe"]

    def test_an_async_callable_object(self, db: str) -> None:
        probe = make_probe()

        class Handler:
            async def __call__(self) -> bool:
                await asyncio.sleep(0)
                return probe()

        handler = execlog.traced_execution(Handler(), name="handler", sample_rate=0.0)

        async def main() -> list[bool]:
            return list(await asyncio.gather(*(handler() for _ in range(3))))

        assert asyncio.run(main()) == [False, False, False]
        assert current.get() is None
        assert probe() is True
        assert names(db) == ["probe"]


class TestGeneratorRoots:
    """An unsampled generator root runs each step with its mark and keeps no items."""

    def test_send_throw_close_and_the_return_value(self, db: str) -> None:
        probe = make_probe()
        encoded: list[int] = []
        finals: list[bool] = []

        class Item:
            def __repr__(self) -> str:
                encoded.append(1)
                return "Item()"

        @execlog.traced_execution
        def echo() -> Generator[Any, Any, str]:
            received: Any = None
            try:
                while received != "stop":
                    try:
                        received = yield (Item(), probe(), received)
                    except KeyError:
                        received = "thrown"
            finally:
                finals.append(probe())
            return "done"

        execlog.configure(sample_rate=0.0)
        gen = echo()
        assert next(gen)[1:] == (False, None)
        assert gen.send("a")[1:] == (False, "a")
        assert gen.throw(KeyError("k"))[1:] == (False, "thrown")
        assert current.get() is None
        with pytest.raises(StopIteration) as stop:
            gen.send("stop")
        assert stop.value.value == "done"

        gen = echo()
        next(gen)
        gen.close()
        assert current.get() is None
        assert encoded == []  # no item was encoded
        assert finals == [False, False]
        execlog.configure(sample_rate=1.0)
        assert probe() is True
        assert names(db) == ["probe"]

    def test_async_generators(self, db: str) -> None:
        probe = make_probe()

        @execlog.traced_execution
        async def numbers() -> AsyncGenerator[Any, Any]:
            received: Any = None
            while received != "stop":
                await asyncio.sleep(0)
                received = yield (probe(), received)

        async def main() -> list[Any]:
            agen = numbers()
            out = [await agen.asend(None), await agen.asend("x"), current.get()]
            with pytest.raises(StopAsyncIteration):
                await agen.asend("stop")
            return out

        execlog.configure(sample_rate=0.0)
        assert asyncio.run(main()) == [(False, None), (False, "x"), None]
        execlog.configure(sample_rate=1.0)
        assert asyncio.run(main()) == [(True, None), (True, "x"), None]
        assert names(db) == ["numbers", "probe", "probe"]


class TestBlocks:
    """``with execution(...)``: left out as a root, inside an unsampled tree, and disabled."""

    def test_an_unsampled_root_block(self, db: str) -> None:
        probe = make_probe()
        execlog.configure(sample_rate=0.0)
        for _ in range(3):
            with execlog.execution("block", inputs={"x": 1}) as block:
                assert block.sampled is False
                assert execlog.current_execution() is not block
                assert execlog.current_execution().sampled is False  # type: ignore[union-attr]
                assert probe() is False
                with execlog.execution("inner") as inner:
                    assert inner.sampled is False
                    assert probe() is False
            assert current.get() is None
        with pytest.raises(KeyError), execlog.execution("failing"):
            raise KeyError("boom")
        assert current.get() is None
        with pytest.raises(RuntimeError, match="only once"), block:
            pass
        execlog.configure(sample_rate=1.0)
        with execlog.execution("kept") as kept:
            assert kept.sampled is True
            assert probe() is True
        assert names(db) == ["kept", "probe"]

    def test_blocks_inside_an_unsampled_function(self, db: str) -> None:
        @execlog.traced_execution
        def root() -> list[bool]:
            with execlog.execution("a") as a, execlog.execution("b") as b:
                return [a.sampled, b.sampled]

        execlog.configure(sample_rate=0.0)
        assert root() == [False, False]
        assert current.get() is None
        execlog.configure(sample_rate=1.0)
        assert root() == [True, True]
        assert names(db) == ["a", "b", "root"]

    def test_a_root_block_drawn_once(self, db: str) -> None:
        """A root block drawn in C and then begun on the Python path (no writer yet) is
        recorded at the rate, not at its square."""
        execlog.configure(sample_rate=0.5)
        for _ in range(200):
            execlog.shutdown()  # the next block starts the writer on the Python path
            with execlog.execution("b"):
                pass
        assert 60 < len(names(db)) < 140  # 100 expected, deviation 7; squared: 50

    def test_disabled_blocks_are_begun_but_not_recorded(self, db: str) -> None:
        execlog.configure(enabled=False)
        with execlog.execution("outer", inputs={"x": 1}) as outer:
            assert outer.execution_id
            assert outer.sampled is True
            assert execlog.current_execution() is outer
            with execlog.execution("inner") as inner:
                assert inner.parent_execution_id == outer.execution_id
                assert inner.correlation_id == outer.correlation_id
            assert execlog.current_execution() is outer
        assert current.get() is None
        with pytest.raises(ValueError, match="bad"), execlog.execution("failing"):
            raise ValueError("bad")
        assert current.get() is None
        execlog.configure(enabled=True)
        with execlog.execution("recorded"):
            pass
        assert names(db) == ["recorded"]

    def test_a_block_with_a_rate_of_its_own(self, db: str) -> None:
        """``execution(..., sample_rate=...)`` decides for a root block over the configured
        rate, and is ignored inside a tree (the tree follows its root)."""
        probe = make_probe()
        with execlog.execution("first"):  # the writer running: the C path decides alone
            pass
        for _ in range(3):
            with execlog.execution("left-out", sample_rate=0.0) as block:
                assert block.sampled is False
                assert probe() is False
            assert current.get() is None
        execlog.configure(sample_rate=0.0)
        with execlog.execution("kept", sample_rate=1.0) as kept:
            assert kept.sampled is True
            with execlog.execution("inner", sample_rate=0.0) as inner:
                assert inner.sampled is True  # follows its root
        with execlog.execution("int-rate", sample_rate=1) as whole:  # an int: checked, kept
            assert whole.sampled is True
        with execlog.execution("none-rate", sample_rate=None) as configured:
            assert configured.sampled is False
        with execlog.execution("every-option", kind="step", inputs={"i": 1}, sample_rate=1.0):
            pass
        assert names(db) == ["every-option", "first", "inner", "int-rate", "kept"]

    def test_a_block_rate_is_drawn_at_that_rate(self, db: str) -> None:
        for _ in range(200):
            with execlog.execution("b", sample_rate=0.25):
                pass
        assert 25 < len(names(db)) < 75  # 50 expected, deviation 6.1

    @pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.5"])
    def test_a_block_rate_out_of_range_raises(self, rate: Any) -> None:
        with pytest.raises((ValueError, TypeError), match="sample_rate"):
            execlog.execution("b", sample_rate=rate)
        assert current.get() is None


class TestTheKeptMark:
    """The marked mapping the C path keeps for the next root never holds on to a finished
    context's values (``test_speedups.py`` checks it is never stale nor leaked)."""

    def test_a_finished_contexts_values_are_freed(self, db: str) -> None:
        request: contextvars.ContextVar[object] = contextvars.ContextVar("request")

        class Session:
            pass

        @execlog.traced_execution
        def handler() -> int:
            return 1

        def serve() -> weakref.ref[Session]:
            session = Session()
            request.set(session)
            handler()  # an unsampled root in this request's context
            return weakref.ref(session)

        execlog.configure(sample_rate=0.0)
        for _ in range(3):
            ref = contextvars.Context().run(serve)  # the request's context is gone after
            gc.collect()
            assert ref() is None
        ctx = contextvars.Context()
        ref = ctx.run(serve)
        gc.collect()
        assert ref() is not None  # its context is alive: so is the value
        del ctx
        gc.collect()
        assert ref() is None
