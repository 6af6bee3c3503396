"""Carrying lineage across process and network boundaries: ``inject``/``extract`` and env."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from execlog import _trace_ids
from execlog._context import current_execution

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

__all__ = ["PropagationContext", "env_context", "extract", "inject"]

ENV_PARENT = "EXECLOG_PARENT_ID"
ENV_CORRELATION = "EXECLOG_CORRELATION_ID"
ENV_DB = "EXECLOG_DB"
HTTP_PARENT = "Execlog-Parent-Id"
HTTP_CORRELATION = "Execlog-Correlation-Id"
TRACEPARENT = "traceparent"

_PARENT_KEYS = frozenset({ENV_PARENT.lower(), HTTP_PARENT.lower()})
_CORRELATION_KEYS = frozenset({ENV_CORRELATION.lower(), HTTP_CORRELATION.lower()})

C = TypeVar("C", bound="MutableMapping[str, str]")


@dataclass(frozen=True, slots=True)
class PropagationContext:
    """Lineage received from elsewhere; pass it to ``execution(..., context=...)``.

    .. versionadded:: 0.1.0
    """

    parent_execution_id: str | None = None
    correlation_id: str | None = None
    #: The caller's OpenTelemetry trace and span (from a ``traceparent`` that came alone):
    #: a root started with this context records them as ``otel.trace_id``/``otel.span_id``.
    otel_trace_id: str | None = None
    otel_span_id: str | None = None

    def __bool__(self) -> bool:
        """True when it carries a parent, a correlation id or a caller's span."""
        return bool(self.parent_execution_id or self.correlation_id or self.otel_span_id)


def inject(carrier: C, style: Literal["env", "http", "w3c"] = "env") -> C:
    """Write the current execution's lineage into ``carrier`` and return it.

    Example::

        env = execlog.inject(dict(os.environ))        # EXECLOG_PARENT_ID, ..., EXECLOG_DB
        subprocess.run(cmd, env=env)
        headers = execlog.inject({}, style="http")    # Execlog-Parent-Id, ...
        headers = execlog.inject({}, style="w3c")     # the same, plus traceparent

    Outside any execution the carrier is returned unchanged. In the environment style it also
    sets ``EXECLOG_DB`` to the database this process records into (an absolute path, or a URL
    without credentials) unless the carrier already has one, so that a child process started
    from any working directory records where its parent does. A private ``:memory:`` database
    cannot be shared, and is not passed on.
    The ``traceparent`` of the ``w3c`` style names the execution as the span OpenTelemetry
    export gives it (trace id from the correlation id, span id from the execution id), flagged
    sampled.

    Args:
        carrier: A mutable mapping of ``str`` to ``str`` (environment, HTTP headers).
        style: ``"env"`` for environment variable names, ``"http"`` for header names,
            ``"w3c"`` for the header names and a W3C ``traceparent``.

    Returns:
        The same carrier.

    Raises:
        ValueError: ``style`` is not one of the three.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``style="w3c"``.
    """
    if style not in ("env", "http", "w3c"):
        msg = f"style must be 'env', 'http' or 'w3c', got {style!r}"
        raise ValueError(msg)
    handle = current_execution()
    if handle is None:
        return carrier
    parent_key, correlation_key = (
        (ENV_PARENT, ENV_CORRELATION) if style == "env" else (HTTP_PARENT, HTTP_CORRELATION)
    )
    correlation = handle.correlation_id or handle.execution_id
    carrier[parent_key] = handle.execution_id
    carrier[correlation_key] = correlation
    if style == "w3c":
        carrier[TRACEPARENT] = (
            f"00-{_trace_ids.trace_id(correlation)}-{_trace_ids.span_id(handle.execution_id)}-01"
        )
    if style == "env" and ENV_DB not in carrier:
        from execlog._recorder import RECORDER  # noqa: PLC0415 - avoids an import cycle
        from execlog._storage import shareable_location  # noqa: PLC0415

        writer = RECORDER.writer  # running: where it writes, even after a chdir
        location = (
            writer.location
            if writer is not None and writer.db == RECORDER.config.db
            else shareable_location(RECORDER.config.db)
        )
        if location is not None:
            carrier[ENV_DB] = location
    return carrier


def extract(carrier: Mapping[str, str]) -> PropagationContext | None:
    """Read lineage written by :func:`inject` (either spelling, any letter case).

    Example::

        with execlog.execution("handler", context=execlog.extract(request.headers)): ...

    Args:
        carrier: Environment, HTTP headers or any mapping of ``str`` to ``str``.

    Returns:
        A :class:`PropagationContext`, or None when the carrier holds no lineage.

    .. versionadded:: 0.1.0
    """
    parent = correlation = traceparent = None
    for key, value in carrier.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            continue
        lowered = key.lower().replace("_", "-")
        if lowered in _PARENT_KEYS_HTTPISH:
            parent = value.strip()
        elif lowered in _CORRELATION_KEYS_HTTPISH:
            correlation = value.strip()
        elif lowered == TRACEPARENT:
            traceparent = value
    if parent or correlation or traceparent is None:
        context = PropagationContext(parent, correlation)
        return context or None
    ids = parse_traceparent(traceparent)
    if ids is None:
        return None
    return PropagationContext(otel_trace_id=ids[0], otel_span_id=ids[1])


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, span id) of a W3C ``traceparent`` header, or None when it is not valid."""
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    version, trace, span, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace) == {"0"} or set(span) == {"0"}:
        return None
    return trace, span


_PARENT_KEYS_HTTPISH = frozenset(k.replace("_", "-") for k in _PARENT_KEYS)
_CORRELATION_KEYS_HTTPISH = frozenset(k.replace("_", "-") for k in _CORRELATION_KEYS)


# os.environ keeps its data in a dict of encoded keys; looking there first spares every root
# execution two calls through the Mapping machinery when the variables are absent (the usual case).
_ENV_DATA = getattr(os.environ, "_data", None)
_ENV_KEYS = (os.fsencode(ENV_PARENT), os.fsencode(ENV_CORRELATION))


def env_lineage_possible() -> bool:
    """False when neither variable is in the environment (two dict look-ups, no decoding)."""
    if not isinstance(_ENV_DATA, dict):  # pragma: no cover - not CPython's os.environ
        return True
    return _ENV_KEYS[0] in _ENV_DATA or _ENV_KEYS[1] in _ENV_DATA


def env_context() -> PropagationContext | None:
    """Lineage this process was started with (``EXECLOG_PARENT_ID``/``EXECLOG_CORRELATION_ID``)."""
    if not env_lineage_possible():
        return None
    parent = os.environ.get(ENV_PARENT)
    correlation = os.environ.get(ENV_CORRELATION)
    if not parent and not correlation:
        return None
    return PropagationContext(parent or None, correlation or None)
