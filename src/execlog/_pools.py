"""Threads and pools that carry the submitter's execution: ``instrument_threads()``.

A ``ContextVar`` does not cross into a thread or a pool's worker by itself: a new thread starts
with an empty context, and a pool's workers were started long before (maybe from another
execution's context, which they would then keep). Once instrumented, every task submitted to a
thread or process pool, and every ``Thread`` started, runs with the execution that was current
where it was submitted (or with none, never with a worker's stale one):

- threads (``ThreadPoolExecutor``, ``multiprocessing.pool.ThreadPool``, ``Thread.start``,
  ``loop.run_in_executor``) get the submitter's handle itself;
- processes (``ProcessPoolExecutor``, ``multiprocessing.Pool``) get its lineage — ids and the
  recorder's configuration, pickled with the task — and record where the submitter does.

The classes are patched, not replaced, so pools created before the call are covered and
names, signatures, exceptions and pickling stay the standard library's. Only execlog's own
variable travels; other context variables keep the standard library's behaviour.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import multiprocessing.pool
import os
import threading
from typing import TYPE_CHECKING, Any

from execlog import _sampling
from execlog._context import current, current_execution
from execlog._execution import ExecutionHandle

if TYPE_CHECKING:
    from collections.abc import Callable

    from execlog._config import Config

__all__ = ["instrument_threads", "instrumented", "uninstrument_threads"]

_lock = threading.Lock()
#: (owner, attribute name, original) of every patch in place; empty when not instrumented
_patched: list[tuple[Any, str, Any]] = []


def instrumented() -> bool:
    """Whether :func:`instrument_threads` is in effect."""
    return bool(_patched)


def _submitter() -> ExecutionHandle | None:
    """The execution work submitted now nests under (an unsampled tree's stand-in too)."""
    return current_execution()


# -- in this process: the handle itself -----------------------------------------------------------


class _InThread:
    """``fn`` run with ``handle`` (an execution or None) as the current execution."""

    __slots__ = ("__wrapped__", "handle")

    def __init__(self, fn: Callable[..., Any], handle: ExecutionHandle | None) -> None:
        self.__wrapped__ = fn
        self.handle = handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = current.set(self.handle)
        try:
            return self.__wrapped__(*args, **kwargs)
        finally:
            current.reset(token)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


def _submit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return original(self, _InThread(fn, _submitter()), *args, **kwargs)

    return submit


#: Modules whose threads serve many submitters (pool workers, result handlers, queue feeders,
#: execlog's writer): they never take the context of whoever happened to start them.
_INFRASTRUCTURE = frozenset(
    {
        "concurrent.futures.thread",
        "concurrent.futures.process",
        "multiprocessing.pool",
        "multiprocessing.queues",
        "multiprocessing.managers",
        "execlog._writer",
        "execlog._recorder",
    }
)


def _thread_start(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def start(self: threading.Thread) -> None:
        handle = _submitter()
        target = getattr(self, "_target", None)
        if (
            handle is not None
            and "run" not in self.__dict__
            and getattr(target, "__module__", None) not in _INFRASTRUCTURE
        ):
            run = self.run

            def carried() -> None:
                # The instance attribute only bridges start() and the thread's first step.
                self.__dict__.pop("run", None)
                token = current.set(handle)
                try:
                    run()
                finally:
                    current.reset(token)

            self.__dict__["run"] = carried
        original(self)

    return start


# -- in a worker process: the lineage, pickled with the task -------------------------------------


def _remote_handle(
    execution_id: str, correlation_id: str, run_id: str | None, sampled: bool = True
) -> ExecutionHandle:
    """A stand-in for an execution of another process: what its children take from it.

    Not ``sampled``: an unsampled tree kept for ``always_record_errors`` (its children are
    recorded only if they fail).
    """
    cls = ExecutionHandle if sampled else _sampling.DeferredExecution
    handle: ExecutionHandle = cls.__new__(cls)
    handle.execution_id = execution_id
    handle.correlation_id = correlation_id
    handle.run_id = run_id
    handle.parent_execution_id = None
    handle._state = 3  # not this process's to end: events directly in the task are not kept
    return handle


class _InProcess:
    """``fn`` pickled with the submitter's lineage and configuration, for a worker process.

    In the worker the task runs with a stand-in of the submitting execution as the current one
    (so what it records nests there), with the submitter's configuration when the worker has
    not configured execlog itself (a ``spawn`` worker then records to the same database), and
    what it recorded is flushed before the result goes back: ``multiprocessing.Pool`` ends its
    workers with ``terminate()`` on leaving a ``with`` block, which no exit handler survives.
    """

    __slots__ = ("config", "correlation_id", "execution_id", "fn", "pid", "run_id", "sampled")

    def __init__(self, fn: Callable[..., Any], handle: ExecutionHandle | None) -> None:
        from execlog._recorder import RECORDER  # noqa: PLC0415 - import cycle

        self.fn = fn
        self.execution_id = None if handle is None else handle.execution_id
        self.correlation_id = None if handle is None else handle.correlation_id
        self.run_id = None if handle is None else handle.run_id
        self.sampled = handle is None or handle.sampled
        self.config: Config = RECORDER.config
        self.pid = os.getpid()

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            object.__setattr__(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from execlog._recorder import RECORDER  # noqa: PLC0415 - import cycle

        if self.pid != os.getpid():
            _adopt(self.config)
        if self.execution_id is None:
            token = current.set(None)
        elif not self.execution_id:  # submitted in an unsampled tree: the worker follows
            token = current.set(_sampling.UNSAMPLED)
        else:
            assert self.correlation_id is not None
            token = current.set(
                _remote_handle(self.execution_id, self.correlation_id, self.run_id, self.sampled)
            )
        try:
            return self.fn(*args, **kwargs)
        finally:
            current.reset(token)
            if self.pid != os.getpid() and RECORDER.writer is not None:
                RECORDER.flush()

    def __repr__(self) -> str:
        return repr(self.fn)


def _adopt(config: Config) -> None:
    """Take the submitter's configuration unless this process configured execlog itself."""
    from execlog import _config  # noqa: PLC0415 - import cycle
    from execlog._recorder import RECORDER  # noqa: PLC0415

    if RECORDER.config == config or RECORDER.config != _config.from_env():
        return
    changed = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if getattr(config, field.name) != getattr(RECORDER.config, field.name)
    }
    RECORDER.configure(**changed)


def _process_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return original(self, _InProcess(fn, _submitter()), *args, **kwargs)

    return submit


def _pool_method(original: Callable[..., Any]) -> Callable[..., Any]:
    """``multiprocessing.Pool`` methods taking ``func`` first: the task carries the lineage."""

    @functools.wraps(original)
    def method(self: Any, func: Any, /, *args: Any, **kwargs: Any) -> Any:
        handle = _submitter()
        carried = (
            _InThread(func, handle)
            if isinstance(self, multiprocessing.pool.ThreadPool)
            else _InProcess(func, handle)
        )
        return original(self, carried, *args, **kwargs)

    return method


_POOL_METHODS = (
    "apply_async",
    "map",
    "map_async",
    "starmap",
    "starmap_async",
    "imap",
    "imap_unordered",
)


# -- switching it on and off ----------------------------------------------------------------------


def instrument_threads() -> None:
    """Make threads and pools carry the submitting execution (idempotent).

    From then on work submitted to a ``concurrent.futures`` thread or process pool (``submit``,
    ``map``), a ``multiprocessing`` pool (``apply_async``, ``map``, ``imap``, ``starmap`` and
    their variants), ``loop.run_in_executor`` and every ``threading.Thread`` started, nests
    under the execution current where it was submitted or started, including pools created
    before the call. Undo with :func:`uninstrument_threads`.

    Example::

        execlog.instrument_threads()

        @execlog.traced_execution
        def load_all(paths):
            with ThreadPoolExecutor() as pool:
                return list(pool.map(load, paths))   # each load() nests under load_all

    .. versionadded:: 0.2.0
    """
    with _lock:
        if _patched:
            return
        patches: list[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
            (concurrent.futures.ThreadPoolExecutor, "submit", _submit),
            (concurrent.futures.ProcessPoolExecutor, "submit", _process_submit),
            (threading.Thread, "start", _thread_start),
        ]
        patches += [(multiprocessing.pool.Pool, name, _pool_method) for name in _POOL_METHODS]
        for owner, name, wrap in patches:
            original = owner.__dict__[name]
            setattr(owner, name, wrap(original))
            _patched.append((owner, name, original))


def uninstrument_threads() -> None:
    """Undo :func:`instrument_threads`: pools and threads, old or new, carry nothing again.

    .. versionadded:: 0.2.0
    """
    with _lock:
        while _patched:
            owner, name, original = _patched.pop()
            setattr(owner, name, original)
