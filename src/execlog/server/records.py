"""Checking one ingested record and turning it into an :class:`~execlog.Execution`.

A record needs ``execution_id``, ``name``, ``status`` and ``started_at``; every other field of
``Execution`` is optional. Each field is checked for its type (and range); the first field that
is wrong names the record's rejection.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from execlog._cli.times import iso_datetime
from execlog.store import Event, Execution

__all__ = ["LEVELS", "STATUSES", "Invalid", "event_of", "execution_of"]

STATUSES = frozenset({"running", "success", "error", "partial", "cancelled", "abandoned"})
LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
_UTC = dt.timezone.utc
_MAX_ID = 256
_MAX_INT = 2**63 - 1
_OPTIONAL_TEXT = ("error_type", "error_message", "error_stack", "run_id")


class Invalid(ValueError):  # noqa: N818 - reads as "raise Invalid(field, why)"
    """A record's field is wrong."""

    def __init__(self, field: str, error: str) -> None:
        """Name the field and what is wrong with it."""
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


def _text(record: dict[str, Any], field: str, *, required: bool, limit: int = 0) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise Invalid(field, "required")
        return None
    if not isinstance(value, str):
        raise Invalid(field, f"must be a string, got {type(value).__name__}")
    if required and not value:
        raise Invalid(field, "must not be empty")
    if limit and len(value) > limit:
        raise Invalid(field, f"longer than {limit} characters")
    return value


def _time(record: dict[str, Any], field: str, *, required: bool) -> dt.datetime | None:
    text = _text(record, field, required=required)
    if text is None:
        return None
    try:
        value = iso_datetime(text)
    except ValueError:
        raise Invalid(field, f"not an ISO 8601 date and time: {text[:40]!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    try:
        return value.astimezone(_UTC)
    except OverflowError:
        raise Invalid(field, "out of range") from None


def _int(record: dict[str, Any], field: str) -> int:
    value = record.get(field)
    if value is None:
        return 0
    if type(value) is not int:
        raise Invalid(field, f"must be an integer, got {type(value).__name__}")
    if not 0 <= value <= _MAX_INT:
        raise Invalid(field, "out of range")
    return value


def _duration(record: dict[str, Any]) -> float | None:
    value = record.get("duration_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("duration_ms", f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise Invalid("duration_ms", "must be a finite number >= 0")
    return float(value)


def execution_of(record: Any) -> Execution:
    """The execution a record describes.

    Raises:
        Invalid: a field is missing or wrong (the first one found).
    """
    if not isinstance(record, dict):
        raise Invalid("", f"a record must be a JSON object, got {type(record).__name__}")
    execution_id = _text(record, "execution_id", required=True, limit=_MAX_ID)
    name = _text(record, "name", required=True)
    status = _text(record, "status", required=True)
    if status not in STATUSES:
        raise Invalid("status", f"must be one of {', '.join(sorted(STATUSES))}")
    started_at = _time(record, "started_at", required=True)
    ended_at = _time(record, "ended_at", required=False)
    parent = _text(record, "parent_execution_id", required=False, limit=_MAX_ID) or None
    correlation_id = _text(record, "correlation_id", required=False, limit=_MAX_ID)
    tags = record.get("tags")
    if tags is None:
        tags = {}
    if not isinstance(tags, dict):
        raise Invalid("tags", f"must be an object, got {type(tags).__name__}")
    host = _text(record, "host", required=False) or "unknown"
    assert execution_id is not None
    assert name is not None
    assert started_at is not None
    texts = {f: _text(record, f, required=False) for f in _OPTIONAL_TEXT}
    return Execution(
        execution_id=execution_id,
        name=name,
        kind=_text(record, "kind", required=False) or "function",
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        duration_ms=_duration(record),
        inputs=record.get("inputs"),
        output=record.get("output"),
        error_type=texts["error_type"],
        error_message=texts["error_message"],
        error_stack=texts["error_stack"],
        parent_execution_id=parent,
        correlation_id=correlation_id or execution_id,
        trigger_kind=_text(record, "trigger_kind", required=False)
        or ("child" if parent else "manual"),
        run_id=texts["run_id"],
        tags=tags,
        pid=_int(record, "pid"),
        thread_id=_int(record, "thread_id"),
        host=host,
    )


def event_of(record: Any) -> Event:
    """The event a record of ``"events"`` describes (``Event.to_dict()``'s shape).

    Raises:
        Invalid: a field is missing or wrong (the first one found).
    """
    if not isinstance(record, dict):
        raise Invalid("", f"an event must be a JSON object, got {type(record).__name__}")
    execution_id = _text(record, "execution_id", required=True, limit=_MAX_ID)
    at = _time(record, "at", required=True)
    level = _text(record, "level", required=True)
    if level not in LEVELS:
        raise Invalid("level", f"must be one of {', '.join(sorted(LEVELS))}")
    message = record.get("message")
    if not isinstance(message, str):
        raise Invalid("message", "required, a string")
    attributes = record.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise Invalid("attributes", f"must be an object, got {type(attributes).__name__}")
    assert execution_id is not None
    assert at is not None
    return Event(
        execution_id=execution_id,
        at=at,
        level=level,
        message=message,
        attributes=attributes,
        logger=_text(record, "logger", required=False),
    )
