"""Joining OpenTelemetry traces: the span current when a root execution starts.

A root execution started while an OpenTelemetry span is current records that span's ids in its
tags (``otel.trace_id``, ``otel.span_id``), so execlog's history joins the traces a program
already produces. OpenTelemetry is never imported here: while ``opentelemetry.trace`` is not
in ``sys.modules`` no span can be current, and asking costs one dict look-up.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any

__all__ = [
    "SPAN_TAG",
    "TRACE_TAG",
    "current_span_ids",
    "join_tags",
    "runtime_var",
    "span_current",
]

TRACE_TAG = "otel.trace_id"
SPAN_TAG = "otel.span_id"

_MODULES = sys.modules
_TRACE_MODULE = "opentelemetry.trace"


_UNRESOLVED: Any = object()
_runtime_var: Any = _UNRESOLVED


def runtime_var() -> contextvars.ContextVar[Any] | None:
    """The ``ContextVar`` OpenTelemetry keeps its current ``Context`` in, or None.

    That of its default runtime context (``contextvars``); a context that is an empty mapping
    holds no span, which is the common case and is answered without calling into
    OpenTelemetry. Resolved once, after ``opentelemetry.trace`` was imported.
    """
    global _runtime_var  # noqa: PLW0603 - resolved once
    if _runtime_var is _UNRESOLVED:
        runtime = getattr(_MODULES.get("opentelemetry.context"), "_RUNTIME_CONTEXT", None)
        var = getattr(runtime, "_current_context", None)
        _runtime_var = var if isinstance(var, contextvars.ContextVar) else None
    return _runtime_var  # type: ignore[no-any-return]


def current_span_ids() -> tuple[str, str] | None:
    """(trace id, span id) in lowercase hex of the current OpenTelemetry span, or None."""
    trace = _MODULES.get(_TRACE_MODULE)
    if trace is None:
        return None
    var = runtime_var()
    if var is not None:
        try:
            if not var.get():
                return None  # an empty Context: no span is current
        except LookupError:
            return None
    try:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")
    except Exception:  # a broken or partial OpenTelemetry install: no join, never an error
        return None


def span_current() -> bool:
    """Whether an OpenTelemetry span is current (the C path asks before starting a root)."""
    return current_span_ids() is not None


def join_tags(ids: tuple[str, str]) -> dict[str, Any]:
    """The tags that record a joined span."""
    return {TRACE_TAG: ids[0], SPAN_TAG: ids[1]}
