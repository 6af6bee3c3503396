"""One live execution: the handle behind ``with execution(...)`` and every traced call.

A handle starts (ids, clocks, lineage, context) on ``__enter__`` and ends on ``__exit__``, where
it maps the outcome to a status, encodes the output and hands one row to the recorder.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Literal

from execlog import _guard
from execlog._config import sample_rate_option
from execlog._context import CAPTURING, current, restore, restore_after_reset
from execlog._ids import new_id
from execlog._otel_link import current_span_ids, join_tags
from execlog._propagation import PropagationContext, env_context, env_sampled_possible
from execlog._recorder import RECORDER

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from types import TracebackType

    from execlog._encoding import Encoder
    from execlog._storage import Row

__all__ = ["STATUSES", "ExecutionHandle", "error_type_name", "execution"]

STATUSES = ("running", "success", "error", "partial", "cancelled", "abandoned")
_SETTABLE = frozenset({"success", "error", "partial", "cancelled"})

_perf_ns = time.perf_counter_ns
_MODULES = sys.modules
_OTEL_TRACE = "opentelemetry.trace"
_get_ident = threading.get_ident

# The C fast path for plain blocks (execlog._speedups), set once it is installed; see
# `_decorator._native_blocks`, which also swaps in C `__enter__`/`__exit__` methods.
_new_block: Callable[[str, str, Any, str | None, float | None], ExecutionHandle] | None = None


def error_type_name(exc: BaseException) -> str:
    """``module.QualName`` of the exception's type; builtins by bare name."""
    cls = type(exc)
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if module in (None, "builtins", "__builtin__"):
        return str(qualname)
    return f"{module}.{qualname}"


def status_for(exc: BaseException | None) -> str:
    """The status an outcome maps to (API.md section 1)."""
    if exc is None:
        return "success"
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled"
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return "success"
    if isinstance(exc, GeneratorExit):
        return "partial"
    return "error"


class ExecutionHandle:
    """A live execution: returned by ``execution(...)`` and by ``current_execution()``.

    Example::

        with execlog.execution("nightly-etl", kind="workflow") as ex:
            ex.tag(rows=10)
            ex.set_output({"rows": 10})

    Attributes:
        execution_id: This execution's id (UUIDv7), set on entry.
        correlation_id: The id shared by the whole tree (the root's id by default).
        parent_execution_id: The parent's id, or None for a root.

    .. versionadded:: 0.1.0
    """

    # Attributes every execution sets live in slots. Those most executions never change (user
    # tags, an explicit output or status, lineage arguments of ``execution()``) are class-level
    # defaults, overridden in the instance ``__dict__`` only when set: a traced call stores
    # sixteen attributes, not twenty-five. `_extra` is True once any of them that matters when
    # the execution ends is set (not `_sample_rate`, read only when it begins), so the common
    # end of an execution checks one attribute, not five.
    __slots__ = (
        "__dict__",
        "_encoder",
        "_extra",
        "_generation",
        "_inputs",
        "_started_ns",
        "_state",
        "_t0",
        "_thread_id",
        "_token",
        "correlation_id",
        "execution_id",
        "kind",
        "name",
        "parent_execution_id",
        "run_id",
        "trigger_kind",
    )

    #: False in a tree that head sampling left out (see ``_sampling``).
    sampled = True

    _capture_output: bool | None = None
    _context: PropagationContext | None = None
    _sample_rate: float | None = None
    #: The execution above an unsampled tree's ``DeferredExecution`` (always_record_errors).
    _parent_handle: ExecutionHandle | None = None
    _output: Any = None
    _output_json: str | None = None
    _output_set = False
    _parent_arg: Any = None
    _running_written = False
    _static_tags: dict[str, Any] | None = None
    _status: str | None = None
    _tags: dict[str, Any] | None = None

    def __init__(
        self,
        name: str,
        *,
        kind: str = "block",
        inputs: Any = None,
        trigger_kind: str | None = None,
        parent: ExecutionHandle | Any | str | None = None,
        correlation_id: str | None = None,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        context: PropagationContext | None = None,
        sample_rate: float | None = None,
    ) -> None:
        """Prepare an execution; it starts on ``__enter__``. See :func:`execution`."""
        self.name = str(name)
        self.kind = str(kind)
        self.trigger_kind: str | None = trigger_kind
        self.correlation_id: str = correlation_id or ""
        self.run_id: str | None = run_id
        self.execution_id = ""
        self.parent_execution_id: str | None = None
        # `_extra`: the C fast path leaves executions with a parent, context or tags to Python
        self._extra = parent is not None or context is not None or bool(tags)
        if parent is not None:
            self._parent_arg = parent
        if context is not None:
            self._context = context
        if tags:
            self._tags = dict(tags)
        if sample_rate is not None:  # read when it begins; nothing to do when it ends
            self._sample_rate = sample_rate
        self._encoder: Encoder | None = None
        self._inputs: Any = inputs
        self._state = 0
        self._token: Token[ExecutionHandle | None] | None = None

    # -- user API -----------------------------------------------------------------------

    def tag(self, tags: dict[str, Any] | None = None, /, **more: Any) -> None:
        """Merge tags into this execution (values keep their JSON types).

        Example::

            ex.tag(rows=10, source="s3")
        """
        self._extra = True
        if self._tags is None:
            self._tags = {}
        if tags:
            self._tags.update(tags)
        if more:
            self._tags.update(more)

    def set_output(self, value: Any) -> None:
        """Record ``value`` as this execution's output (wins over a traced return value)."""
        self._output = value
        self._output_set = True
        self._extra = True

    def set_status(self, status: str) -> None:
        """Override the final status (``success``, ``error``, ``partial`` or ``cancelled``).

        An exception leaving the execution still records ``error``/``cancelled``.

        Raises:
            ValueError: ``status`` is not one of the four.
        """
        if status not in _SETTABLE:
            msg = f"status must be one of {sorted(_SETTABLE)}, got {status!r}"
            raise ValueError(msg)
        self._status = status
        self._extra = True

    @property
    def started_at(self) -> Any:
        """Start time as a timezone-aware UTC ``datetime`` (None before entry)."""
        if not self._state:
            return None
        import datetime as dt  # noqa: PLC0415 - rarely used

        return dt.datetime.fromtimestamp(self._started_ns / 1e9, tz=dt.timezone.utc)

    def __repr__(self) -> str:
        """Show the name and ids."""
        return (
            f"<ExecutionHandle {self.name!r} id={self.execution_id or None} "
            f"correlation={self.correlation_id}>"
        )

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> ExecutionHandle:
        """Start the execution and make it current."""
        if self._state:
            msg = "an execution handle can be entered only once"
            raise RuntimeError(msg)
        outer = current.get()
        if outer is None:
            if (
                self._extra  # a parent or a context (or tags)
                or self._sample_rate is not None
                or RECORDER.config.sample_rate < 1.0
                or env_sampled_possible()
            ):
                unsampled = False
                with _guard.guard:
                    unsampled = self._unsampled_root()
                if unsampled:
                    return self
        elif outer.__class__ is not ExecutionHandle:
            if outer is CAPTURING:  # made while execlog captures a value: not recorded
                self._state = 3
                return self
            if outer.__class__ is _sampling.UnsampledExecution:
                self._state = 3  # in an unsampled tree
                self.sampled = False
                return self
            if outer.__class__ is _sampling.DeferredExecution:
                self.__class__ = _sampling.DeferredExecution
                self._parent_handle = outer
        with _guard.guard:
            recording = RECORDER.enabled
            if recording:
                self._inputs = (
                    None
                    if self._inputs is None or not RECORDER.config.capture_inputs
                    else self._enc().encode(self._inputs)
                )
                if RECORDER.writer is None:
                    RECORDER._ensure_writer()  # before the clock: not part of the duration
            self._begin(outer)
            if recording:
                RECORDER.track(self)
            else:
                self._state = 3  # not recorded
        try:
            self._token = current.set(self)
        except Exception:  # record it outside the context, as the C path does
            restore(self, outer)
            with _guard.guard:
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        """End the execution: record status, output and error; never swallow the exception."""
        t1 = _perf_ns()
        token, self._token = self._token, None
        if token is not None:
            try:
                current.reset(token)
            except ValueError:  # exited in another context (e.g. a task finalizer)
                pass
            except Exception:  # the variable put back, the failure reported
                restore_after_reset(self, token)
                with _guard.guard:
                    raise
        with _guard.guard:
            self._finish(t1, exc)
        return False

    async def __aenter__(self) -> ExecutionHandle:
        """Same as ``__enter__``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        """Same as ``__exit__``."""
        return self.__exit__(exc_type, exc, tb)

    # -- internals ----------------------------------------------------------------------

    def _unsampled_root(self) -> bool:
        """Decide a root block's sampling; True: not recorded, its tree made unsampled.

        An explicit ``parent`` is followed (a recorded one, a stored one or an id: recorded);
        otherwise the decision received (``context``, the environment), else a draw.
        """
        if self._parent_arg is not None:
            return self._follow(self._parent_arg)
        rate = self._sample_rate
        if rate is None:
            rate = RECORDER.config.sample_rate
        context = self._context
        if context is None:
            context = env_context()
        if rate >= 1.0 and (context is None or context.sampled is None):
            return False
        if not RECORDER.enabled or _sampling.root_sampled(rate, context):
            return False
        if RECORDER.config.always_record_errors:
            self.__class__ = _sampling.DeferredExecution
            return False
        return self._leave_out()

    def _follow(self, parent: Any) -> bool:
        """The decision of an explicit parent's tree (True: this block is left out)."""
        if getattr(parent, "sampled", True):
            return False
        if isinstance(parent, _sampling.DeferredExecution):
            self.__class__ = _sampling.DeferredExecution
            self._parent_handle = parent
            return False
        return self._leave_out()

    def _leave_out(self) -> bool:
        """Not recorded, and its tree not either: the unsampled stand-in is current."""
        self._state = 3
        self.sampled = False
        self._token = current.set(_sampling.UNSAMPLED)
        return True

    def _enc(self) -> Encoder:
        return self._encoder or RECORDER.encoder

    def _begin(self, outer: ExecutionHandle | None) -> None:
        """Fix lineage, then the clock and the id: the block starts when this returns.

        ``outer`` is the current execution, if any. Both times of the row derive from the one
        monotonic reading taken here (``clock_offset`` maps it to wall time), so a child's
        times always lie within its parent's.
        """
        self._thread_id = _get_ident()
        self._generation = RECORDER.generation
        parent = self._parent_arg
        context = self._context
        parent_id: str | None
        parent_correlation: str | None
        parent_run: str | None
        if parent is not None:
            parent_id, parent_correlation, parent_run = _parent_lineage(parent, outer)
        elif context:
            parent_id = context.parent_execution_id
            parent_correlation = context.correlation_id or parent_id
            parent_run = None
        elif outer is not None:
            parent_id = outer.execution_id
            parent_correlation = outer.correlation_id
            parent_run = outer.run_id
        else:
            inherited = env_context()
            if inherited is None:
                parent_id = parent_correlation = parent_run = None
            else:
                parent_id = inherited.parent_execution_id
                parent_correlation = inherited.correlation_id or parent_id
                parent_run = None
        if parent_id is None:
            self._join_otel(context)
        self._t0 = t0 = _perf_ns()
        self._started_ns = started = t0 + RECORDER.clock_offset
        self.execution_id = eid = new_id(started)
        self.parent_execution_id = parent_id
        if not self.correlation_id:
            self.correlation_id = parent_correlation or eid
        if self.run_id is None:
            self.run_id = parent_run
        if self.trigger_kind is None:
            self.trigger_kind = "child" if parent_id else "manual"
        self._state = 1

    def _join_otel(self, context: PropagationContext | None) -> None:
        """A root: record the OpenTelemetry span it joins (a ``traceparent`` or the current one).

        Tags given explicitly win over the joined ids.
        """
        joined = None
        if context is not None and context.otel_trace_id and context.otel_span_id:
            joined = (context.otel_trace_id, context.otel_span_id)
        elif _MODULES.get(_OTEL_TRACE) is not None:
            joined = current_span_ids()
        if joined is not None:
            self._tags = {**join_tags(joined), **(self._tags or {})}
            self._extra = True

    def _finish(self, t1: int, exc: BaseException | None, result: Any = None) -> None:
        """End the execution and hand its row to the recorder.

        ``result`` is a traced call's return value (the output unless ``set_output`` was used).
        """
        if self._state != 1:
            return
        self._state = 2
        recorder = RECORDER
        recorder.channel.live.discard(self)
        if self._generation != recorder.generation:
            return  # started before a fork: the parent process records it
        status = "success" if exc is None else status_for(exc)
        if self._status is not None and status == "success":
            status = self._status
        recorder.enqueue(self._row(status, t1, exc, result), final=self._running_written)

    def _output_bytes(self, result: Any) -> str | None:
        capture = self._capture_output
        if capture is None:
            capture = RECORDER.config.capture_output
        if not capture:
            return None
        if not self._output_set:
            if result is not None:
                return self._enc().encode(result)
            return self._output_json

        return self._enc().encode(self._output)

    def _tags_bytes(self) -> str | None:
        tags = self._tags
        if self._static_tags:
            tags = {**self._static_tags, **tags} if tags else self._static_tags
        if not tags:
            return None
        return self._enc().encode(tags)

    def _row(self, status: str, t1: int, exc: BaseException | None, result: Any = None) -> Row:
        duration_ns = t1 - self._t0
        started_ns = self._started_ns
        error_type: str | None = None
        error_message: str | None = None
        error_stack: str | None = None
        if exc is not None and status != "success":
            enc = self._enc()
            error_type = enc.encode_text(error_type_name(exc))
            error_message = enc.encode_text(_safe_str(exc))
            error_stack = enc.encode_text(_format_stack(exc))
        return (
            self.execution_id,
            self.name,
            self.kind,
            status,
            started_ns // 1000,
            (started_ns + duration_ns) // 1000,
            duration_ns / 1e6,
            self._inputs,
            self._output_bytes(result),
            error_type,
            error_message,
            error_stack,
            self.parent_execution_id,
            self.correlation_id,
            self.trigger_kind,
            self.run_id,
            self._tags_bytes(),
            RECORDER.pid,
            self._thread_id,
            RECORDER.host,
        )

    def _running_row(self) -> Row | None:
        """The row that shows this execution as ``running`` (writer thread)."""
        if self._state != 1:
            return None
        return (
            self.execution_id,
            self.name,
            self.kind,
            "running",
            self._started_ns // 1000,
            None,
            None,
            self._inputs,
            None,
            None,
            None,
            None,
            self.parent_execution_id,
            self.correlation_id,
            self.trigger_kind,
            self.run_id,
            None,
            RECORDER.pid,
            self._thread_id,
            RECORDER.host,
        )


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__qualname__}>"


#: The file of execlog's Python wrappers, whose frames error stacks leave out.
_WRAPPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_wrappers.py")


def _format_stack(exc: BaseException) -> str:
    """The exception's formatted traceback, without the frames of execlog's own wrappers.

    A traced call's Python wrapper is not the user's code, and where the C extension runs the
    call it has no frame at all: leaving those frames out (wherever they are, in chained
    exceptions too) makes the stored stack the same whichever path recorded it.
    """
    try:
        formatted = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        pending, seen = [formatted], set()
        while pending:
            part = pending.pop()
            if id(part) in seen:
                continue
            seen.add(id(part))
            part.stack = traceback.StackSummary.from_list(
                [frame for frame in part.stack if frame.filename != _WRAPPER_FILE]
            )
            pending.extend(p for p in (part.__cause__, part.__context__) if p is not None)
            pending.extend(getattr(part, "exceptions", None) or ())  # exception groups
        return "".join(formatted.format())
    except Exception:
        return f"<traceback unavailable for {type(exc).__qualname__}>"


def _parent_lineage(
    parent: Any, outer: ExecutionHandle | None
) -> tuple[str, str | None, str | None]:
    """(id, correlation, run id) of an explicit ``parent=``: a handle, an ``Execution`` or an id."""
    if isinstance(parent, str):
        if outer is not None and outer.execution_id == parent:
            return parent, outer.correlation_id, outer.run_id
        live = next((h for h in RECORDER.channel.live.copy() if h.execution_id == parent), None)
        if live is not None:
            return parent, live.correlation_id, live.run_id
        return parent, _stored_correlation(parent), None
    parent_id = getattr(parent, "execution_id", None)
    if not isinstance(parent_id, str) or not parent_id:
        msg = f"parent must be an execution handle, an Execution or an id, got {parent!r}"
        raise TypeError(msg)
    return parent_id, getattr(parent, "correlation_id", None), getattr(parent, "run_id", None)


def _stored_correlation(execution_id: str) -> str | None:
    """Look the parent's correlation up in the database (flushing what is queued first)."""
    from execlog._storage import open_backend  # noqa: PLC0415 - rare path

    RECORDER.flush(timeout=RECORDER.config.flush_interval * 10)
    try:
        backend = open_backend(RECORDER.config.db)
    except Exception:
        return None
    try:
        row = backend.get(execution_id)
    finally:
        backend.close()
    return None if row is None else row[13]


def execution(
    name: str,
    *,
    kind: str = "block",
    inputs: Any = None,
    trigger_kind: str | None = None,
    parent: ExecutionHandle | Any | str | None = None,
    correlation_id: str | None = None,
    run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    context: PropagationContext | None = None,
    sample_rate: float | None = None,
) -> ExecutionHandle:
    """Record a block of code as an execution; use with ``with`` or ``async with``.

    Example::

        with execlog.execution("nightly-etl", kind="workflow", inputs={"day": day}) as ex:
            rows = load(day)                   # traced calls nest under it
            ex.set_output({"rows": len(rows)})

        with execlog.execution("retry", parent=failed_id, trigger_kind="retry"): ...

    Args:
        name: What ran.
        kind: A free-text category (default ``"block"``).
        inputs: JSON-able inputs to record.
        trigger_kind: Why it ran (``manual``, ``scheduled``, ``retry`` ...); by default
            ``manual`` for a root and ``child`` when nested.
        parent: An explicit parent (handle, ``Execution`` or id), e.g. the failed run a retry
            repeats; the correlation is inherited from it.
        correlation_id: Override the correlation id.
        run_id: A free-form id grouping executions (inherited from the parent when omitted).
        tags: Initial tags.
        context: Lineage from :func:`extract` (another process or an HTTP request).
        sample_rate: The share of these blocks recorded when one is a root (head sampling;
            default: the configured ``sample_rate``). Inside a tree it follows the root.

    Returns:
        A handle; it starts when entered.

    Raises:
        ValueError: ``sample_rate`` is not a number from 0 to 1.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``sample_rate``.
    """
    if sample_rate is not None:
        sample_rate = sample_rate_option("sample_rate", sample_rate)
    if (
        _new_block is not None
        and parent is None
        and context is None
        and correlation_id is None
        and run_id is None
        and not tags
        and name.__class__ is str
        and kind.__class__ is str
    ):
        return _new_block(name, kind, inputs, trigger_kind, sample_rate)
    return ExecutionHandle(
        name,
        kind=kind,
        inputs=inputs,
        trigger_kind=trigger_kind,
        parent=parent,
        correlation_id=correlation_id,
        run_id=run_id,
        tags=tags,
        context=context,
        sample_rate=sample_rate,
    )


from execlog import _sampling  # noqa: E402 - it builds on ExecutionHandle
