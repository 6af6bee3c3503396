"""Events on the current execution: ``execlog.event(...)`` and the log handler's records.

An event travels through the same queue and writer as execution rows, as a tuple marked with
:data:`execlog._storage.EVENT`. Recording one is a few attribute reads, a clock reading, the
attributes' encoding (redacted and bounded like inputs) and a ``deque.append``; nothing here
raises into the caller (under ``EXECLOG_STRICT=1``, execlog's own tests, internal errors do).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from execlog._context import CAPTURING, current
from execlog._execution import ExecutionHandle
from execlog._guard import logger, report_once, strict
from execlog._recorder import RECORDER
from execlog._storage import EVENT

if TYPE_CHECKING:
    from execlog._encoding import Encoder
    from execlog._redaction import Redactor

__all__ = ["LEVELS", "event", "level_name", "record_event"]

#: Event levels, as stored.
LEVELS = ("debug", "info", "warning", "error", "critical")

_NAMES = {name: name for name in LEVELS} | {
    "warn": "warning",
    "fatal": "critical",
    "exception": "error",
}

_perf_ns = time.perf_counter_ns
_dumps = orjson.dumps


def level_name(level: object) -> str:
    """One of :data:`LEVELS` for a name (any case, ``warn``/``fatal`` too) or a logging number.

    Anything else is ``info``, reported once.
    """
    if type(level) is str:
        name = _NAMES.get(level) or _NAMES.get(level.lower())
        if name is not None:
            return name
    elif isinstance(level, int) and not isinstance(level, bool):
        # logging's numbers (DEBUG 10 ... CRITICAL 50); one in between takes the level below
        return LEVELS[min(max(level // 10 - 1, 0), 4)]
    report_once(
        "execlog.event: level must be one of %s or a logging level number, got %r; "
        "recorded as 'info'",
        ", ".join(LEVELS),
        level,
    )
    return "info"


def event(message: str, /, level: str | int = "info", **attributes: Any) -> None:
    """Record a timestamped event on the current execution (nothing outside one).

    Example::

        @execlog.traced_execution
        def load(path):
            rows = read(path)
            execlog.event("rows loaded", rows=len(rows), source=path)
            if not rows:
                execlog.event("empty input", level="warning")

    Attributes are captured like inputs: secrets redacted, the whole bounded by
    ``max_payload_bytes``, values JSON cannot hold kept as a bounded ``repr``. The event goes
    through the same queue and writer as executions; read it back with ``Store.events``.
    Never raises: a problem is logged once on the ``execlog`` logger.

    Args:
        message: What happened (text; anything else is recorded as ``str(message)``).
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical`` (any case, or a
            ``logging`` level number).
        **attributes: Data about the event, stored as a JSON object.

    .. versionadded:: 0.2.0
    """
    handle = current.get()
    if handle is None or handle is CAPTURING or handle._state != 1:
        return  # outside any execution, or in one not recorded (disabled, capturing, ended)
    try:
        # record_event(), inlined: this is the path user code calls in loops
        recorder = RECORDER
        if handle._generation != recorder.generation:
            return
        at_ns = _perf_ns() + recorder.clock_offset
        encoder = handle._encoder or recorder.encoder
        if message.__class__ is not str:
            message = _text_of(message)
        if level.__class__ is not str or _NAMES.get(level) != level:
            level = level_name(level)
        row = (
            EVENT,
            handle.execution_id,
            at_ns // 1000,
            level,
            message
            if len(message) * 4 <= encoder.limit and "://" not in message
            else _text(encoder, message),
            _encode_attributes(encoder, attributes) if attributes else None,
            None,
        )
        if handle.__class__ is not ExecutionHandle and handle.hold(row):  # type: ignore[attr-defined]
            return  # an unsampled tree's: kept until the execution is known to be recorded
        channel = recorder.channel
        channel.events = True  # before the append: the writer looks after taking a batch
        queue = channel.queue
        if (
            len(queue) < channel.limit
            and not channel.waiters
            and recorder.writer is not None
            and not recorder.exiting
        ):  # Recorder.enqueue's common case, inlined
            queue.append(row)
            if len(queue) >= channel.batch_size and not channel.woken:
                channel.wake_writer()
        else:
            recorder.enqueue(row)
    except Exception as exc:
        if strict():
            raise
        logger.error(
            "execlog internal error (recording continues): %s: %s",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )


def record_event(
    handle: ExecutionHandle,
    message: object,
    level: object,
    attributes: dict[str, Any] | None,
    logger_name: str | None,
    at_ns: int | None = None,
) -> None:
    """Queue one event on ``handle`` if it is being recorded (the caller guards errors).

    ``at_ns``: wall time of the event (ns since the epoch); now when omitted.
    """
    if handle._state != 1:
        return  # not recorded (disabled, made while capturing) or already ended
    recorder = RECORDER
    if handle._generation != recorder.generation:
        return  # started before a fork: it belongs to the parent process
    if at_ns is None:
        at_ns = _perf_ns() + recorder.clock_offset
    encoder = handle._enc()
    if type(message) is not str:
        message = _text_of(message)
    if type(level) is not str or level not in _NAMES or _NAMES[level] != level:
        level = level_name(level)
    row = (
        EVENT,
        handle.execution_id,
        at_ns // 1000,
        level,
        _text(encoder, message),
        None if not attributes else _encode_attributes(encoder, attributes),
        logger_name,
    )
    if handle.__class__ is not ExecutionHandle and handle.hold(row):  # type: ignore[attr-defined]
        return
    recorder.channel.events = True
    recorder.enqueue(row)


def _text(encoder: Encoder, text: str) -> str:
    """A message bounded and with URL passwords masked, like every captured string."""
    return encoder.encode_text(text)


_SCALARS = frozenset({int, float, bool, type(None)})
#: Sets of attribute names (in call order) found free of secrets, and by which redactor.
_CLEAN_NAMES: dict[tuple[str, ...], Redactor] = {}


def _encode_attributes(encoder: Encoder, attributes: dict[str, Any]) -> str:
    """The attributes as JSON, redacted and bounded like inputs.

    The common case (a few numbers, flags and short strings under keys that name no secret)
    is one ``orjson.dumps``; anything else goes through the encoder's general path.
    """
    for value in attributes.values():
        cls = value.__class__
        if cls not in _SCALARS and (cls is not str or len(value) > 256):
            return encoder.encode(attributes)
    # An event site passes the same keyword names every time: remember which sets of names
    # the current redactor found free of secrets (checked again once it is replaced).
    redactor = encoder.redactor
    names = tuple(attributes)
    if _CLEAN_NAMES.get(names) is not redactor:
        if any(map(redactor.is_secret, names)):
            return encoder.encode(attributes)
        if len(_CLEAN_NAMES) >= 1024:
            _CLEAN_NAMES.clear()
        _CLEAN_NAMES[names] = redactor
    try:
        data = _dumps(attributes)
    except Exception:
        return encoder.encode(attributes)
    if len(data) > encoder.limit or data.find(b"://") != -1:
        return encoder.encode(attributes)
    return data.decode()


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__qualname__}>"
