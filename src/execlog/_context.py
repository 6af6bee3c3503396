"""The current execution, carried by a ``ContextVar`` across calls, threads and tasks.

While execlog captures a value (a ``__repr__``, a record's fields, a ``__len__``), the variable
holds :data:`CAPTURING` instead of an execution: code run then is never recorded (capture never
records), and :func:`current_execution` says there is none. In a tree that head sampling left
out it holds an ``UnsampledExecution`` (see ``_sampling``).
"""

from __future__ import annotations

import contextvars
import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from execlog._execution import ExecutionHandle

__all__ = [
    "CAPTURING",
    "capturing",
    "current",
    "current_execution",
    "propagate",
    "restore",
    "restore_after_reset",
]

P = ParamSpec("P")
R = TypeVar("R")


class _Capturing:
    """The marker :data:`current` holds while a value is being captured."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<execlog capturing a value>"


#: Held by :data:`current` while execlog captures a value: traced code run then is not recorded.
CAPTURING: Any = _Capturing()

#: The innermost live execution of this context (thread or task), :data:`CAPTURING`, or None.
current: contextvars.ContextVar[ExecutionHandle | None] = contextvars.ContextVar(
    "execlog_current", default=None
)


class capturing:  # noqa: N801 - used like a function: `with capturing():`
    """``with capturing():`` runs a block of execlog's own capture code unrecorded.

    User code reached from there (a ``__repr__``, a property, ``__len__``) may call traced
    functions; they run, but record nothing (a traced function reachable from its own
    argument's ``__repr__`` would otherwise recurse until ``RecursionError``).
    """

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = current.set(CAPTURING)

    def __exit__(self, *exc: object) -> None:
        try:
            current.reset(self._token)
        except ValueError:  # pragma: no cover - reset in another context
            current.set(None)


def restore(handle: object, previous: object) -> None:
    """Make ``previous`` current again where ``handle`` still is after a failed ``set``.

    3.11 sets the variable even when it cannot make the token (a MemoryError).
    """
    if current.get() is handle:
        current.set(previous)  # type: ignore[arg-type]


def restore_after_reset(handle: object, token: contextvars.Token[Any]) -> None:
    """:func:`restore` after ``current.reset(token)`` failed, other than with ValueError.

    The token is used up before the reset's own allocation can fail: its old value is set.
    """
    old = token.old_value
    restore(handle, None if old is contextvars.Token.MISSING else old)


def current_execution() -> ExecutionHandle | None:
    """Return the innermost live execution of the calling context, or None.

    Example::

        @execlog.traced_execution
        def step():
            execlog.current_execution().tag(rows=10)

    Returns:
        The handle of the execution whose body is running here, or None outside any.

    .. versionadded:: 0.1.0
    """
    handle = current.get()
    return None if handle is CAPTURING else handle


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the calling context, so work run later elsewhere nests under it.

    Example::

        with execlog.execution("fan-out"):
            pool.submit(execlog.propagate(work), item)   # work's executions are children

    The context is captured when ``propagate`` is called. The returned callable may be run
    many times, concurrently, from many threads: each run gets its own copy of the context.

    Args:
        fn: The callable to run inside the captured context.

    Returns:
        A callable with ``fn``'s signature that runs it inside the captured context.

    Raises:
        TypeError: ``fn`` is not callable (said now, not when a pool runs it).

    .. versionadded:: 0.1.0
    """
    if not callable(fn):
        msg = f"propagate() needs a callable, got {fn!r}"
        raise TypeError(msg)
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_context
