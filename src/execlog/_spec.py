"""A decorated function's spec, and the beginning and end of its traced calls (the hot path).

:class:`Spec` holds what is decided once per function (name, kind, switches, the binding plan)
and once per configuration (the encoder, which parameters are secret). :meth:`Spec.begin`,
:func:`complete` and :func:`end` are the Python reference of a traced call; the C accelerator
repeats their common case (``_speedups.c`` reads these slots).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import orjson

from execlog import _guard
from execlog._binding import Binder
from execlog._context import CAPTURING, current, restore, restore_after_reset
from execlog._encoding import _OPTIONS, REDACTED, Encoder, Redactor
from execlog._execution import ExecutionHandle, _get_ident, _perf_ns
from execlog._ids import new_id
from execlog._otel_link import current_span_ids, join_tags
from execlog._propagation import _ENV_DATA, _ENV_KEYS, _ENV_SAMPLED_KEY, env_context
from execlog._recorder import RECORDER
from execlog._sampling import (
    DeferredExecution,
    UnsampledExecution,
    _new_unsampled,
    root_sampled,
)
from execlog._storage import NULL

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["MISSING", "Spec", "complete", "end", "internal_error", "report_internal"]

MISSING: Any = object()
_new_handle = ExecutionHandle.__new__
_current_get = current.get
_current_set = current.set
_current_reset = current.reset
_dumps = orjson.dumps
_ENV_DATA_DICT: dict[bytes, bytes] = _ENV_DATA if isinstance(_ENV_DATA, dict) else {}
_MODULES = sys.modules  # a root joins an OpenTelemetry span only while its API is imported
_OTEL_TRACE = "opentelemetry.trace"
_ENV_FAST = isinstance(_ENV_DATA, dict)  # absent variables cost two dict look-ups
_ENV_PARENT, _ENV_CORRELATION = _ENV_KEYS
_ENV_SAMPLED = _ENV_SAMPLED_KEY


class Spec:
    """Everything decided once per decorated function."""

    # Read by the C accelerator through slot offsets.
    __slots__ = (
        "_encoder",
        "_encoder_generation",
        "_secret_params",
        "binder",
        "capture_inputs",
        "capture_output",
        "general_end",
        "kind",
        "name",
        "redact",
        "redact_exempt",
        "sample_rate",
        "tags",
        "trigger_kind",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        name: str | None,
        kind: str,
        capture_inputs: bool | Collection[str] | None,
        capture_output: bool | None,
        trigger_kind: str | None,
        tags: dict[str, Any] | None,
        redact: tuple[str, ...],
        *,
        exclude: tuple[str, ...] = (),
        redact_exempt: tuple[str, ...] = (),
        sample_rate: float | None = None,
    ) -> None:
        self.name = name or getattr(func, "__qualname__", None) or repr(func)
        self.kind = kind
        keep = None
        if capture_inputs is not None and not isinstance(capture_inputs, bool):
            keep, capture_inputs = frozenset(capture_inputs), True
        self.capture_inputs: bool | None = capture_inputs
        self.capture_output = capture_output
        self.trigger_kind = trigger_kind
        self.tags = dict(tags) if tags else None
        # static tags or an output switch of its own: every call ends on the general path
        self.general_end = self.tags is not None or capture_output is not None
        self.redact = redact
        self.redact_exempt = redact_exempt
        #: Head sampling when a call of it is a root (None: the configured rate).
        self.sample_rate = sample_rate
        self.binder = Binder(func, keep=keep, exclude=exclude)
        self._encoder: Encoder = RECORDER.encoder
        self._secret_params: tuple[str, ...] = ()
        self._encoder_generation = -1

    def encoder(self) -> Encoder:
        """The encoder for the current configuration plus this function's redaction names."""
        if self._encoder_generation != RECORDER.config_generation:
            config = RECORDER.config
            encoder = RECORDER.encoder
            if self.redact or self.redact_exempt:
                redactor = Redactor(
                    (*config.redact, *self.redact), (*config.redact_exempt, *self.redact_exempt)
                )
                encoder = Encoder(config.max_payload_bytes, redactor)
            binder = self.binder
            self._secret_params = tuple(
                n
                for n in binder.order
                if encoder.redactor.is_secret(n) and n not in binder.excluded
            )
            self._encoder = encoder
            self._encoder_generation = RECORDER.config_generation
        return self._encoder

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's inputs, with every top-level key named like a secret redacted.

        Declared parameters were checked for secret names once per configuration
        (``_secret_params``); an undeclared keyword (the call will raise ``TypeError``) lands at
        the top level of the inputs too, so it is checked here. Call after :meth:`encoder`.
        """
        binder = self.binder
        inputs = binder.bind(instance, args, kwargs)
        for secret in self._secret_params:
            if secret in inputs:
                inputs[secret] = REDACTED
        if kwargs and binder.var_kw is None:
            keywords = binder.keywords
            redactor = self._encoder.redactor
            for key in kwargs:
                if key not in keywords and key in inputs and redactor.is_secret(key):
                    inputs[key] = REDACTED
        return inputs

    def begin(  # noqa: PLR0915 - the hot path is kept flat on purpose
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ExecutionHandle | None:
        """Create, start and make current a handle for one call (the hot path).

        None: the call runs unrecorded (made while execlog captured a value, or inside an
        unsampled tree). An unsampled root returns an :class:`UnsampledExecution`, current
        until it ends, so that its tree follows it.
        """
        recorder = RECORDER
        outer = _current_get()
        cls = ExecutionHandle
        if outer is None:
            rate = self.sample_rate
            if rate is None:
                rate = recorder.config.sample_rate
            if rate < 1.0 or not _ENV_FAST or _ENV_SAMPLED in _ENV_DATA_DICT:
                quiet = (  # nothing inherited: the usual case, two or three dict look-ups
                    _ENV_FAST
                    and _ENV_PARENT not in _ENV_DATA_DICT
                    and _ENV_CORRELATION not in _ENV_DATA_DICT
                    and _ENV_SAMPLED not in _ENV_DATA_DICT
                )
                if not root_sampled(rate, None if quiet else env_context()):
                    if not recorder.config.always_record_errors:
                        unsampled = _new_unsampled(UnsampledExecution)
                        try:
                            unsampled._token = _current_set(unsampled)
                        except BaseException:  # set, but no token (3.11, a MemoryError)
                            restore(unsampled, None)
                            raise
                        return unsampled
                    cls = DeferredExecution
        elif outer.__class__ is not ExecutionHandle:
            if outer is CAPTURING or outer.__class__ is UnsampledExecution:
                return None
            if outer.__class__ is DeferredExecution:
                cls = DeferredExecution
        if self._encoder_generation == recorder.config_generation:
            encoder = self._encoder
        else:
            encoder = self.encoder()
        capture = self.capture_inputs
        if capture is None:
            capture = recorder.config.capture_inputs
        inputs_json: str | None = None
        if capture:
            inputs = self.bind(instance, args, kwargs)
            # Top-level keys were checked by bind(): only a nested object can still hold a
            # secret key. The common case is one measure, one dumps, two finds and one len.
            try:
                data = _dumps(inputs, encoder.default, _OPTIONS) if _small(inputs) else None
            except Exception:
                data = None
            if (
                data is None
                or (data.find(b"{", 1) != -1 and encoder.redactor.may_contain(data))
                or data.find(b"://") != -1
                or len(data) > encoder.limit
            ):
                inputs_json = encoder.encode(inputs, nested_from=1)
            else:
                inputs_json = data.decode()
        handle = _new_handle(cls)
        handle.name = self.name
        handle.kind = self.kind
        handle._inputs = inputs_json
        handle._encoder = encoder
        handle._extra = self.general_end
        if cls is not ExecutionHandle:  # ends through DeferredExecution._finish
            handle._extra = True
            if outer is not None:
                handle._parent_handle = outer
        if self.tags is not None:
            handle._static_tags = self.tags
        if self.capture_output is not None:
            handle._capture_output = self.capture_output
        handle._thread_id = _get_ident()
        handle._generation = recorder.generation
        handle._state = 1
        if recorder.writer is None:
            recorder._ensure_writer()  # before the clock: not part of the duration
        # The user's code starts now: both times of the row derive from this reading
        # (`clock_offset` maps the monotonic clock to wall time), so a child's times always
        # lie within its parent's.
        handle._t0 = t0 = _perf_ns()
        handle._started_ns = started = t0 + recorder.clock_offset
        handle.execution_id = eid = new_id(started)
        if outer is not None:
            handle.parent_execution_id = outer.execution_id
            handle.correlation_id = outer.correlation_id
            handle.run_id = outer.run_id
            handle.trigger_kind = self.trigger_kind or "child"
        else:
            if (
                _ENV_FAST
                and _ENV_PARENT not in _ENV_DATA_DICT
                and _ENV_CORRELATION not in _ENV_DATA_DICT
            ):
                inherited = None
            else:
                inherited = env_context()
            parent_id = None if inherited is None else inherited.parent_execution_id
            handle.parent_execution_id = parent_id
            handle.correlation_id = (
                eid if inherited is None else (inherited.correlation_id or parent_id or eid)
            )
            handle.run_id = None
            handle.trigger_kind = self.trigger_kind or ("child" if parent_id else "manual")
            if parent_id is None and _OTEL_TRACE in _MODULES:
                joined = current_span_ids()
                if joined is not None:
                    handle._tags = join_tags(joined)
                    handle._extra = True
        recorder.channel.live.add(handle)
        try:
            handle._token = _current_set(handle)
        except BaseException:  # nothing stays changed: not the variable, nor the live set
            recorder.channel.live.discard(handle)
            restore(handle, outer)
            raise
        return handle


_SMALL = frozenset({int, float, bool, type(None)})


def _small(inputs: dict[str, Any]) -> bool:
    """Whether every input is a number, a flag, None or short text: safe to encode whole."""
    for value in inputs.values():
        cls = value.__class__
        if cls not in _SMALL and (cls is not str or len(value) > 256):
            return False
    return True


def end(handle: ExecutionHandle, exc: BaseException | None, result: Any = MISSING) -> None:
    """End a traced call in general: any status, tags, an explicit output."""
    t1 = _perf_ns()
    token = handle._token
    if token is not None:
        handle._token = None
        try:
            _current_reset(token)
        except ValueError:  # ended in another context (a generator finalised elsewhere)
            pass
        except Exception:
            restore_after_reset(handle, token)
            internal_error()
    try:
        if result is not MISSING and not handle._output_set:
            handle._finish(t1, exc, result)
        else:
            handle._finish(t1, exc)
    except Exception:
        with _guard.guard:
            raise


def leave_unsampled(handle: ExecutionHandle) -> None:
    """End an unsampled root begun on the Python path: its stand-in is current no more.

    The reset is :func:`complete`'s, which keeps its own copy inline (the hot path).
    """
    token = handle._token
    handle._token = None
    handle._state = 2
    try:
        _current_reset(token)  # type: ignore[arg-type]
    except ValueError:  # ended in another context
        pass
    except Exception:  # the variable put back, the failure reported (raised if strict)
        restore_after_reset(handle, token)  # type: ignore[arg-type]
        internal_error()


def complete(handle: ExecutionHandle, result: Any) -> None:
    """The success path of a traced call, flat: close the context, build the row, queue it.

    Anything unusual (user tags or status, an explicit output, per-function capture switches,
    an execution begun before a fork) goes through the general :func:`end`.
    """
    t1 = _perf_ns()
    token = handle._token
    handle._token = None
    try:
        _current_reset(token)  # type: ignore[arg-type]
    except ValueError:  # ended in another context
        pass
    except Exception:  # the variable put back, the failure reported (raised if strict)
        restore_after_reset(handle, token)  # type: ignore[arg-type]
        internal_error()
    try:
        recorder = RECORDER
        if handle._state != 1 or handle._extra or handle._generation != recorder.generation:
            handle._finish(t1, None, result)
            return
        handle._state = 2
        channel = recorder.channel
        eid = handle.execution_id
        channel.live.discard(handle)
        if recorder.config.capture_output:
            cls = result.__class__
            if cls is int or cls is float or cls is bool or result is None:
                try:
                    output: str | None = _dumps(result).decode()
                except Exception:  # an int beyond 64 bits
                    output = handle._encoder.encode(result)  # type: ignore[union-attr]
            else:
                output = handle._encoder.encode(result)  # type: ignore[union-attr]
        else:
            output = None
        started_ns = handle._started_ns
        duration_ns = t1 - handle._t0
        row = (
            eid,
            handle.name,
            handle.kind,
            "success",
            started_ns // 1000,
            (started_ns + duration_ns) // 1000,
            duration_ns / 1e6,
            handle._inputs,
            output,
            NULL,
            NULL,
            NULL,
            handle.parent_execution_id,
            handle.correlation_id,
            handle.trigger_kind,
            handle.run_id,
            NULL,
            recorder.pid,
            handle._thread_id,
            recorder.host,
        )
        queue = channel.queue
        if len(queue) >= channel.limit or channel.waiters or recorder.writer is None:
            recorder.enqueue(row, final=handle._running_written)
        else:
            queue.append(row)
            if len(queue) >= channel.batch_size and not channel.woken:
                channel.wake_writer()
    except Exception:
        internal_error()


def internal_error() -> None:
    """Report the exception being handled as an internal error (call from ``except``)."""
    with _guard.guard:
        raise  # noqa: PLE0704 - re-raises the exception the caller is handling


def report_internal(exc: BaseException) -> None:
    """Report ``exc``, raised inside the C fast path, as an internal error."""
    with _guard.guard:
        raise exc


def begin_or_none(
    spec: Spec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ExecutionHandle | None:
    """:meth:`Spec.begin`, or None (run unrecorded) after reporting an internal error."""
    try:
        return spec.begin(instance, args, kwargs)
    except Exception:
        internal_error()
    return None
