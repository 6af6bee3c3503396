"""Mapping executions to OpenTelemetry spans: the one mapping behind ``execlog.otel``.

:func:`to_span` maps a stored :class:`~execlog.store.Execution` with its events;
:func:`span_of_row` maps a committed row (what the writer hands the exporter), keeping its JSON
fields as stored instead of decoding them to encode them again. Both go through :func:`_span`.
Imports OpenTelemetry's SDK: only ``execlog.otel`` imports this module.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from execlog import _trace_ids
from execlog._encoding import truncate_json
from execlog._otel_link import SPAN_TAG, TRACE_TAG

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from execlog.store import Event, Execution

__all__ = ["span_of_row", "to_span"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_PRIMITIVES = (str, bool, int, float)


#: Ids already mapped (a tree shares one trace id; a parent is usually exported just before
#: its children, so each span id is asked for twice). Cleared when full.
_TRACE_IDS: dict[str, int] = {}
_SPAN_IDS: dict[str, int] = {}
_CACHE_SIZE = 4096


def _trace_id(correlation_id: str) -> int:
    value = _TRACE_IDS.get(correlation_id)
    if value is None:
        if len(_TRACE_IDS) >= _CACHE_SIZE:
            _TRACE_IDS.clear()
        value = _TRACE_IDS[correlation_id] = _trace_ids.trace_id_int(correlation_id)
    return value


def _span_id(execution_id: str) -> int:
    value = _SPAN_IDS.get(execution_id)
    if value is None:
        if len(_SPAN_IDS) >= _CACHE_SIZE:
            _SPAN_IDS.clear()
        value = _SPAN_IDS[execution_id] = _trace_ids.span_id_int(execution_id)
    return value


def _ns(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _json_attribute(value: Any, limit: int) -> str:
    """``value`` as JSON text of at most ``limit`` bytes (execlog's truncation marker beyond)."""
    data = orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS)
    if len(data) > limit:
        data = truncate_json(data, limit)
    return data.decode("utf-8", "replace")


def _bounded(text: str | bytes, limit: int) -> str:
    """Stored JSON text within ``limit`` bytes (execlog's truncation marker beyond)."""
    if isinstance(text, str):
        if len(text) * 4 <= limit:
            return text
        text = text.encode("utf-8", "surrogatepass")
    if len(text) > limit:
        text = truncate_json(text, limit)
    return text.decode("utf-8", "replace")


def _event_attributes(
    attributes: Mapping[str, Any], level: str, logger: str | None, limit: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, _PRIMITIVES) and not (isinstance(value, str) and len(value) > limit):
            out[str(key)] = value
        else:
            out[str(key)] = _json_attribute(value, limit)
    out["execlog.level"] = level
    if logger:
        out["execlog.logger"] = logger
    return out


#: An event as the mapping takes it: (time in ns, level, message, attributes, logger).
_EventValues = tuple[int, str, str, "Mapping[str, Any]", "str | None"]


def to_span(
    execution: Execution,
    events: Sequence[Event] = (),
    *,
    resource: Resource | None = None,
    scope: InstrumentationScope | None = None,
    max_attribute_bytes: int = 8192,
) -> ReadableSpan:
    """The span of one finished execution (the mapping described in the module docstring).

    Example::

        span = to_span(store.get(execution_id), store.events(execution_id))

    .. versionadded:: 0.2.0
    """
    ex = execution
    limit = max_attribute_bytes
    start = _ns(ex.started_at)
    return _span(
        (
            ex.execution_id,
            ex.name,
            ex.kind,
            ex.status,
            start,
            None if ex.ended_at is None else _ns(ex.ended_at),
            ex.duration_ms,
            None if ex.inputs is None else _json_attribute(ex.inputs, limit),
            None if ex.output is None else _json_attribute(ex.output, limit),
            ex.error_type,
            ex.error_message,
            ex.error_stack,
            ex.parent_execution_id,
            ex.correlation_id,
            ex.trigger_kind,
            ex.run_id,
            _json_attribute(ex.tags, limit) if ex.tags else None,
            ex.pid,
            ex.thread_id,
            ex.host,
        ),
        ex.tags,
        [(_ns(e.at), e.level, e.message, e.attributes, e.logger) for e in events],
        resource,
        scope,
        limit,
    )


def span_of_row(
    row: Sequence[Any],
    events: Sequence[Sequence[Any]],
    resource: Resource | None,
    scope: InstrumentationScope | None,
    limit: int,
) -> ReadableSpan:
    """The span of a committed row (``execlog._storage.COLUMNS`` order, JSON fields as text).

    The same mapping as :func:`to_span`, without decoding the JSON fields to encode them again:
    what the exporter runs on the writer thread for every execution.
    """
    values = list(row)
    values[4] *= 1000
    if values[5] is not None:
        values[5] *= 1000
    for index in (7, 8, 16):  # inputs, output, tags
        if values[index] is not None:
            values[index] = _bounded(values[index], limit)
    tags_text = row[16]
    tags = None
    if tags_text is not None and (SPAN_TAG in tags_text if isinstance(tags_text, str) else True):
        try:
            tags = orjson.loads(tags_text)
        except orjson.JSONDecodeError:
            tags = None
    converted = [
        (
            at * 1000,
            level,
            message,
            (orjson.loads(attributes) if attributes is not None else {}),
            logger,
        )
        for _, at, level, message, attributes, logger in events
    ]
    joined = tags if isinstance(tags, dict) else None
    return _span(values, joined, converted, resource, scope, limit)


def _span(
    values: Sequence[Any],
    tags: Mapping[str, Any] | None,
    events: Sequence[_EventValues],
    resource: Resource | None,
    scope: InstrumentationScope | None,
    limit: int,
) -> ReadableSpan:
    """The one mapping: a row's values (times in ns, JSON fields as bounded text) to a span."""
    (
        execution_id,
        name,
        kind,
        status_text,
        start,
        end,
        duration_ms,
        inputs,
        output,
        error_type,
        error_message,
        error_stack,
        parent_id,
        correlation_id,
        trigger_kind,
        run_id,
        tags_text,
        pid,
        thread_id,
        host,
    ) = values
    trace_id = _trace_id(correlation_id or execution_id)
    context = SpanContext(trace_id, _span_id(execution_id), is_remote=False, trace_flags=_SAMPLED)
    parent = None
    if parent_id:
        parent = SpanContext(trace_id, _span_id(parent_id), is_remote=False, trace_flags=_SAMPLED)
    if end is None:
        end = start if duration_ms is None else start + int(duration_ms * 1e6)
    attributes: dict[str, Any] = {
        "execlog.execution_id": execution_id,
        "execlog.correlation_id": correlation_id,
        "execlog.kind": kind,
        "execlog.status": status_text,
        "execlog.trigger_kind": trigger_kind,
    }
    if kind == "function":
        attributes["code.function.name"] = name
    optional = (
        ("execlog.parent_execution_id", parent_id),
        ("execlog.run_id", run_id),
        ("execlog.duration_ms", duration_ms),
        ("process.pid", pid or None),
        ("thread.id", thread_id or None),
        ("host.name", host or None),
        ("error.type", error_type),
        ("execlog.inputs", inputs),
        ("execlog.output", output),
        ("execlog.tags", tags_text),
    )
    attributes.update((key, value) for key, value in optional if value is not None)
    links: list[Link] = []
    joined = None if not tags else _joined(tags)
    if joined is not None:
        links.append(Link(joined, {"execlog.link": "joined"}))
    span_events = [
        SpanEvent(message, _event_attributes(data, level, logger, limit), at)
        for at, level, message, data, logger in events
    ]
    status = Status(StatusCode.UNSET)
    if status_text == "error":
        status = Status(StatusCode.ERROR, error_message or error_type or "error")
        exception: dict[str, Any] = {"exception.type": error_type or "error"}
        if error_message is not None:
            exception["exception.message"] = error_message
        if error_stack is not None:
            exception["exception.stacktrace"] = error_stack
        span_events.append(SpanEvent("exception", exception, end))
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=span_events,
        links=links,
        kind=SpanKind.SERVER if trigger_kind == "http" else SpanKind.INTERNAL,
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def _joined(tags: Mapping[str, Any]) -> SpanContext | None:
    """The OpenTelemetry span a root joined, from its tags."""
    trace_hex, span_hex = tags.get(TRACE_TAG), tags.get(SPAN_TAG)
    if not (isinstance(trace_hex, str) and isinstance(span_hex, str)):
        return None
    try:
        context = SpanContext(
            int(trace_hex, 16), int(span_hex, 16), is_remote=True, trace_flags=_SAMPLED
        )
    except ValueError:
        return None
    return context if context.is_valid else None
