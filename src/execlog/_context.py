"""The current execution, carried by a ``ContextVar`` across calls, threads and tasks."""

from __future__ import annotations

import contextvars
import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from execlog._execution import ExecutionHandle

__all__ = ["current", "current_execution", "propagate"]

P = ParamSpec("P")
R = TypeVar("R")

#: The innermost live execution of this context (thread or task), or None.
current: contextvars.ContextVar[ExecutionHandle | None] = contextvars.ContextVar(
    "execlog_current", default=None
)


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
    return current.get()


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

    .. versionadded:: 0.1.0
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_context
