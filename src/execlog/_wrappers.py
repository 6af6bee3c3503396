"""The pure-Python wrappers of a traced callable, one per kind, chosen at decoration time.

Plain functions, coroutines, generators and async generators each get their own wrapper, so an
``async def`` is recorded for as long as it is awaited and a generator for its whole iteration
(trap 1 of STYLE.md). Two families:

- ``fast_*``: ``functools.wraps`` closures for plain functions and methods (the reference path
  when the C accelerator is not built, and its fallback for what it does not handle);
- ``wrapt_*``: ``(wrapped, instance, args, kwargs)`` wrappers for ``wrapt.FunctionWrapper``,
  which tells the bound instance apart from the arguments: generator methods, async
  generators and callables that are not plain functions.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from execlog import _guard
from execlog._context import current
from execlog._encoding import marker
from execlog._recorder import RECORDER
from execlog._sampling import UnsampledExecution
from execlog._spec import Spec, begin_or_none, complete, end, internal_error, leave_unsampled

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator

    from execlog._encoding import Encoder
    from execlog._execution import ExecutionHandle

__all__ = [
    "fast_coroutine",
    "fast_generator",
    "fast_method",
    "fast_plain",
    "wrapt_async_generator",
    "wrapt_coroutine",
    "wrapt_generator",
    "wrapt_plain",
]

Hooks = tuple[Any, Any, "Callable[..., None]"]


def wrapt_plain(spec: Spec, hooks: Hooks) -> Callable[..., Any]:
    """A plain callable; ``hooks`` = ``(call_spec, begin_bound, complete)`` (C or Python)."""
    call_spec, begin_bound, finish = hooks

    def plain(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not RECORDER.enabled:
            return wrapped(*args, **kwargs)
        handle = None if begin_bound is None else begin_bound(call_spec, instance, args, kwargs)
        if handle is None:
            handle = begin_or_none(spec, instance, args, kwargs)
            if handle is None:
                return wrapped(*args, **kwargs)
        if handle.__class__ is UnsampledExecution:  # a root left out (C or Python): no record
            try:
                return wrapped(*args, **kwargs)
            finally:
                leave_unsampled(handle)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            end(handle, exc)
            raise
        finish(handle, result)
        return result

    return plain


def wrapt_coroutine(spec: Spec, hooks: Hooks) -> Callable[..., Any]:
    """An ``async def`` that is not a plain function (see :func:`wrapt_plain`)."""
    call_spec, begin_bound, finish = hooks

    async def coroutine(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not RECORDER.enabled:
            return await wrapped(*args, **kwargs)
        handle = None if begin_bound is None else begin_bound(call_spec, instance, args, kwargs)
        if handle is None:
            handle = begin_or_none(spec, instance, args, kwargs)
            if handle is None:
                return await wrapped(*args, **kwargs)
        if handle.__class__ is UnsampledExecution:
            try:
                return await wrapped(*args, **kwargs)
            finally:
                leave_unsampled(handle)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            end(handle, exc)
            raise
        finish(handle, result)
        return result

    return coroutine


class _Items:
    """Collects what a generator yields as JSON, keeping at most ``limit`` bytes.

    Once the limit is passed, later items are counted, not encoded: the cost stays bounded by
    the limit, and the marker's ``size`` is then unknown.
    """

    __slots__ = ("chunks", "count", "encoder", "kept", "size", "whole")

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.chunks: list[bytes] = []
        self.size = 1
        self.count = 0
        self.kept = True
        self.whole = True

    def add(self, item: Any) -> None:
        self.count += 1
        if not self.kept:
            self.whole = False
            return
        with _guard.guard:
            data, whole = self.encoder.encode_part(item)
            self.size += len(data) + 1
            self.whole = self.whole and whole
            if whole and self.size <= self.encoder.limit:
                self.chunks.append(data)
            else:
                # keep the first bytes of the overflowing item for the preview, then stop
                self.chunks.append(data[: self.encoder.limit])
                self.kept = False

    def finish(self, handle: ExecutionHandle) -> None:
        data = b"[" + b",".join(self.chunks) + b"]"
        if not self.kept:
            size = self.size if self.whole else None
            data = marker(data, self.encoder.limit, size, self.count)
        handle._output_json = data.decode()


def _capture_output(spec: Spec) -> bool:
    return (
        spec.capture_output if spec.capture_output is not None else RECORDER.config.capture_output
    )


def _step(handle: ExecutionHandle, action: Callable[[Any], Any], value: Any) -> Any:
    """Run one step of the wrapped generator with the execution current."""
    token = current.set(handle)
    try:
        return action(value)
    finally:
        current.reset(token)


def _drive(
    handle: ExecutionHandle, gen: Generator[Any, Any, Any], items: _Items | None
) -> Generator[Any, Any, Any]:
    """Run ``gen`` to its end, each step with ``handle`` current; ``items`` keeps its yields."""
    send: Any = gen.send
    value: Any = None
    while True:
        token = current.set(handle)
        try:
            item = send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            current.reset(token)
        if items is not None:
            items.add(item)
        try:
            value = yield item
            send = gen.send
        except GeneratorExit:
            _step(handle, lambda _: gen.close(), None)
            raise
        except BaseException as exc:  # thrown in: pass it to the body
            value = exc
            send = gen.throw


def wrapt_generator(spec: Spec) -> Callable[..., Any]:
    """A generator: recorded for its whole iteration, current only while its body runs."""

    def generator(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Generator[Any, Any, Any]:
        if not RECORDER.enabled:
            return (yield from wrapped(*args, **kwargs))
        handle = begin_or_none(spec, instance, args, kwargs)
        if handle is None:
            return (yield from wrapped(*args, **kwargs))
        token, handle._token = handle._token, None
        if token is not None:
            current.reset(token)  # current only while the body runs (API.md section 6)
        if handle.__class__ is UnsampledExecution:  # nothing kept: steps with its mark
            gen = _step(handle, lambda _: wrapped(*args, **kwargs), None)
            return (yield from _drive(handle, gen, None))
        items = _Items(handle._enc()) if _capture_output(spec) else None
        try:
            gen = _step(handle, lambda _: wrapped(*args, **kwargs), None)
            result = yield from _drive(handle, gen, items)
            if items is not None:
                items.finish(handle)
            end(handle, None)
        except BaseException as exc:
            if handle._state == 1:
                if items is not None:
                    items.finish(handle)
                end(handle, exc)
            raise
        return result

    return generator


def wrapt_async_generator(spec: Spec) -> Callable[..., Any]:  # noqa: PLR0915 - the protocol
    """An async generator (see :func:`wrapt_generator`)."""

    async def agenerator(
        wrapped: Any, instance: Any, args: Any, kwargs: Any
    ) -> AsyncGenerator[Any, Any]:
        if not RECORDER.enabled:
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        handle = begin_or_none(spec, instance, args, kwargs)
        if handle is None:
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        token, handle._token = handle._token, None
        if token is not None:
            current.reset(token)
        unsampled = handle.__class__ is UnsampledExecution  # nothing kept
        items = _Items(handle._enc()) if not unsampled and _capture_output(spec) else None
        try:
            agen = _step(handle, lambda _: wrapped(*args, **kwargs), None)
            value: Any = None
            thrown: BaseException | None = None
            while True:
                token = current.set(handle)
                try:
                    if thrown is not None:
                        item = await agen.athrow(thrown)
                    else:
                        item = await agen.asend(value)
                except StopAsyncIteration:
                    if items is not None:
                        items.finish(handle)
                    end(handle, None)
                    return
                finally:
                    current.reset(token)
                if items is not None:
                    items.add(item)
                thrown = None
                try:
                    value = yield item
                except GeneratorExit:
                    token = current.set(handle)
                    try:
                        await agen.aclose()
                    finally:
                        current.reset(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            if handle._state == 1:
                if items is not None:
                    items.finish(handle)
                end(handle, exc)
            raise

    return agenerator


# The fast wrappers repeat the bodies above with the function fixed and plain (*args,
# **kwargs), because a shared body would cost every call one more frame.


def fast_plain(func: Any, spec: Spec) -> Callable[..., Any]:
    """A plain function (no instance)."""
    recorder = RECORDER
    begin = spec.begin

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if not recorder.enabled:
            return func(*args, **kwargs)
        try:
            handle = begin(None, args, kwargs)
        except Exception:
            internal_error()  # logged (re-raised under EXECLOG_STRICT): run unrecorded
            return func(*args, **kwargs)
        if handle is None:
            return func(*args, **kwargs)
        if handle.__class__ is UnsampledExecution:  # a root left out: nothing to record
            try:
                return func(*args, **kwargs)
            finally:
                leave_unsampled(handle)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            end(handle, exc)
            raise
        complete(handle, result)
        return result

    return traced


def fast_method(func: Any, spec: Spec) -> Callable[..., Any]:
    """A function whose first argument is always the instance (a method, a classmethod)."""
    recorder = RECORDER
    begin = spec.begin

    @functools.wraps(func)
    def traced(instance: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not recorder.enabled:
            return func(instance, *args, **kwargs)
        try:
            handle = begin(instance, args, kwargs)
        except Exception:
            internal_error()
            return func(instance, *args, **kwargs)
        if handle is None:
            return func(instance, *args, **kwargs)
        if handle.__class__ is UnsampledExecution:
            try:
                return func(instance, *args, **kwargs)
            finally:
                leave_unsampled(handle)
        try:
            result = func(instance, *args, **kwargs)
        except BaseException as exc:
            end(handle, exc)
            raise
        complete(handle, result)
        return result

    return traced


def fast_coroutine(func: Any, spec: Spec, *, method: bool = False) -> Callable[..., Any]:
    """An ``async def`` (``method``: its first argument is the instance)."""
    recorder = RECORDER

    @functools.wraps(func)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        if not recorder.enabled:
            return await func(*args, **kwargs)
        if method and args:
            handle = begin_or_none(spec, args[0], args[1:], kwargs)
        else:
            handle = begin_or_none(spec, None, args, kwargs)
        if handle is None:
            return await func(*args, **kwargs)
        if handle.__class__ is UnsampledExecution:
            try:
                return await func(*args, **kwargs)
            finally:
                leave_unsampled(handle)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            end(handle, exc)
            raise
        complete(handle, result)
        return result

    return traced


def fast_generator(func: Any, spec: Spec) -> Callable[..., Any]:
    """A generator function that is not a method."""
    impl = wrapt_generator(spec)

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return (yield from impl(func, None, args, kwargs))

    return traced
