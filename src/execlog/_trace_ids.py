"""W3C trace context ids for execlog's executions: one mapping for every integration.

OpenTelemetry export, the ``traceparent`` carrier and the web middleware all name an execution
the same way, so a span exported twice is the same span and a ``traceparent`` sent to another
service points at the span that service will see in the exported trace:

- trace id (32 lowercase hex digits): the correlation id's own 128 bits when it is a UUID (as
  execlog's ids are), else the first 16 bytes of its BLAKE2b digest;
- span id (16 lowercase hex digits): the first 8 bytes of the execution id's BLAKE2b digest.

W3C forbids all-zero ids; the one value in 2**64 (or 2**128) that would map to zero is replaced
by ``...01``.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["span_id", "span_id_int", "trace_id", "trace_id_int"]

_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def trace_id(correlation_id: str) -> str:
    """The 32-hex-digit trace id of a correlation."""
    text = correlation_id.replace("-", "").lower()
    if not _UUID_HEX.fullmatch(text):
        text = hashlib.blake2b(correlation_id.encode(), digest_size=16).hexdigest()
    return "0" * 31 + "1" if text == "0" * 32 else text


def span_id(execution_id: str) -> str:
    """The 16-hex-digit span id of an execution."""
    text = hashlib.blake2b(execution_id.encode(), digest_size=8).hexdigest()
    return "0" * 15 + "1" if text == "0" * 16 else text


def trace_id_int(correlation_id: str) -> int:
    """:func:`trace_id` as the integer OpenTelemetry's SDK uses."""
    return int(trace_id(correlation_id), 16)


def span_id_int(execution_id: str) -> int:
    """:func:`span_id` as the integer OpenTelemetry's SDK uses."""
    return int(span_id(execution_id), 16)
