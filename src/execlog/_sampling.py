"""Head sampling: which trees are recorded, decided once per root execution.

A root decides (``configure(sample_rate=...)``, or the ``sample_rate=`` of its decorator or
``execution()``, or the decision it received through ``inject``/``extract``); every execution
below it follows. In an unsampled tree :data:`current` holds an :class:`UnsampledExecution`:
traced calls under it run as the bare function (the C path checks the type and calls through),
and nothing of the tree is recorded.

With ``configure(always_record_errors=True)`` an unsampled tree is made of
:class:`DeferredExecution` handles instead: begun like recorded ones (their inputs captured when
they start), but ended silently unless the execution or one of its descendants failed; then it
is recorded, and so is every ancestor up to the root as it ends.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from execlog._execution import ExecutionHandle, status_for
from execlog._native import SPEEDUPS
from execlog._recorder import RECORDER

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token

    from execlog._propagation import PropagationContext
    from execlog._storage import Row

__all__ = [
    "UNSAMPLED",
    "DeferredExecution",
    "UnsampledExecution",
    "root_sampled",
]

_random = random.random  # reseeded in a forked child by the random module itself


def root_sampled(rate: float, context: PropagationContext | None) -> bool:
    """Whether a root execution is recorded: the decision it received, else a draw.

    A ``traceparent`` that came alone (another system's) decides only where this root samples
    at all (``rate`` below 1): a service that records everything keeps doing so whatever an
    upstream tracer sampled.
    """
    taken = _take_decision()
    if taken is not None:
        return taken
    if context is not None:
        sampled = context.sampled
        if sampled is not None:
            foreign = (
                context.otel_span_id is not None
                and context.parent_execution_id is None
                and context.correlation_id is None
            )
            return sampled or (foreign and rate >= 1.0)
        if context.parent_execution_id:
            return True  # a parent that did not say: it is recorded (unsampled ones say so)
    return rate >= 1.0 or (rate > 0.0 and _random() < rate)


class UnsampledExecution(ExecutionHandle):
    """What :func:`current_execution` returns inside an unsampled tree: records nothing.

    ``tag``, ``set_output`` and ``set_status`` do nothing; ``execution_id`` is empty (nothing
    will ever carry that id); ``inject`` writes the decision only. ``sampled`` is False.
    """

    __slots__ = ()
    sampled = False

    # Class-level values shadow the handle's slots: making one costs an allocation, not a
    # dozen stores (the Python path makes one per unsampled root).
    name = "unsampled"
    kind = "unsampled"
    execution_id = ""
    correlation_id = ""
    parent_execution_id = None
    run_id = None
    trigger_kind = None
    _encoder = None
    _extra = False
    _generation = -1
    _inputs = None
    _started_ns = 0
    _t0 = 0
    _thread_id = 0
    _state = 3
    _token: Token[ExecutionHandle | None] | None = None

    def tag(self, tags: dict[str, Any] | None = None, /, **more: Any) -> None:
        """Do nothing: the tree is not recorded."""

    def set_output(self, value: Any) -> None:
        """Do nothing: the tree is not recorded."""

    def set_status(self, status: str) -> None:
        """Do nothing: the tree is not recorded."""

    def _finish(self, t1: int, exc: BaseException | None, result: Any = None) -> None:  # noqa: ARG002
        self._state = 2

    def _running_row(self) -> Row | None:
        return None

    def __repr__(self) -> str:
        return "<UnsampledExecution: this tree is not recorded>"


_new_unsampled = UnsampledExecution.__new__

#: The value of :data:`current` in an unsampled tree whose root was decided in C.
UNSAMPLED = _new_unsampled(UnsampledExecution)


def _no_decision() -> bool | None:
    return None


#: The decision the C path drew for the root the Python path is beginning now, if it left it
#: there after drawing (taken once; see ``take_decision`` in ``_speedups.c``).
_take_decision: Callable[[], bool | None] = getattr(SPEEDUPS, "take_decision", None) or _no_decision


class DeferredExecution(ExecutionHandle):
    """An execution of an unsampled tree kept for ``always_record_errors``.

    Recorded only when it or a descendant fails (status ``error``): then it and every ancestor
    still running are recorded as they end. Its events wait with it until then.
    """

    __slots__ = ()
    sampled = False
    _keep = False
    _held: list[Row] | None = None

    def _mark(self) -> None:
        """Record this execution and its ancestors (a failure happened at or below it)."""
        handle: ExecutionHandle | None = self
        while isinstance(handle, DeferredExecution) and not handle._keep:
            handle._keep = True
            handle = handle._parent_handle

    def hold(self, row: Row) -> bool:
        """Keep an event row until this execution is known to be recorded; False: queue it."""
        if self._keep:
            return False
        if self._held is None:
            self._held = []
        self._held.append(row)
        return True

    def _finish(self, t1: int, exc: BaseException | None, result: Any = None) -> None:
        if self._state != 1:
            return
        status = "success" if exc is None else status_for(exc)
        if status == "error" or (status == "success" and self._status == "error"):
            self._mark()
        if not self._keep:
            self._state = 2
            RECORDER.channel.live.discard(self)
            self._held = None
            return
        super()._finish(t1, exc, result)
        held, self._held = self._held, None
        if held:
            RECORDER.channel.events = True  # before the rows: the writer looks for events
            for row in held:
                RECORDER.enqueue(row)

    def _running_row(self) -> Row | None:
        return super()._running_row() if self._keep else None
