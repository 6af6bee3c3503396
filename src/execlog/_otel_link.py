"""Joining OpenTelemetry traces: the span current when a root execution starts.

A root execution started while an OpenTelemetry span is current records that span's ids in its
tags (``otel.trace_id``, ``otel.span_id``), so execlog's history joins the traces a program
already produces. OpenTelemetry is never imported here: while ``opentelemetry.trace`` is not
in ``sys.modules`` no span can be current, and asking costs one dict look-up.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["SPAN_TAG", "TRACE_TAG", "current_span_ids", "join_tags", "span_current"]

TRACE_TAG = "otel.trace_id"
SPAN_TAG = "otel.span_id"

_MODULES = sys.modules
_TRACE_MODULE = "opentelemetry.trace"


def current_span_ids() -> tuple[str, str] | None:
    """(trace id, span id) in lowercase hex of the current OpenTelemetry span, or None."""
    trace = _MODULES.get(_TRACE_MODULE)
    if trace is None:
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
