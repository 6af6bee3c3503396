"""Carrying lineage across process and network boundaries: ``inject``/``extract`` and env."""

from __future__ import annotations

import os
import re
import secrets
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
ENV_SAMPLED = "EXECLOG_SAMPLED"
HTTP_PARENT = "Execlog-Parent-Id"
HTTP_CORRELATION = "Execlog-Correlation-Id"
HTTP_SAMPLED = "Execlog-Sampled"
TRACEPARENT = "traceparent"

_PARENT_KEYS = frozenset({ENV_PARENT.lower(), HTTP_PARENT.lower()})
_CORRELATION_KEYS = frozenset({ENV_CORRELATION.lower(), HTTP_CORRELATION.lower()})
_SAMPLED_KEYS = frozenset({ENV_SAMPLED.lower(), HTTP_SAMPLED.lower()})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

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
    #: The head-sampling decision of the caller's tree (None: not said, decide here).
    sampled: bool | None = None

    def __bool__(self) -> bool:
        """True when it carries a parent, a correlation id, a caller's span or a decision."""
        return bool(
            self.parent_execution_id
            or self.correlation_id
            or self.otel_span_id
            or self.sampled is not None
        )


def _flag(value: str) -> bool | None:
    """``EXECLOG_SAMPLED``/``Execlog-Sampled`` as a decision (None when not one)."""
    lowered = value.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


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
    export gives it (trace id from the correlation id, span id from the execution id).
    The head-sampling decision travels too (``EXECLOG_SAMPLED``/``Execlog-Sampled`` ``1`` or
    ``0``, and the ``traceparent`` flags): in an unsampled tree only the decision is written
    (with random ids in the ``traceparent``), and the receiving side records nothing either.

    Args:
        carrier: A mutable mapping of ``str`` to ``str`` (environment, HTTP headers).
        style: ``"env"`` for environment variable names, ``"http"`` for header names,
            ``"w3c"`` for the header names and a W3C ``traceparent``.

    Returns:
        The same carrier.

    Raises:
        ValueError: ``style`` is not one of the three.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``style="w3c"``; the sampling decision.
    """
    if style not in ("env", "http", "w3c"):
        msg = f"style must be 'env', 'http' or 'w3c', got {style!r}"
        raise ValueError(msg)
    handle = current_execution()
    if handle is None:
        return carrier
    parent_key, correlation_key, sampled_key = (
        (ENV_PARENT, ENV_CORRELATION, ENV_SAMPLED)
        if style == "env"
        else (HTTP_PARENT, HTTP_CORRELATION, HTTP_SAMPLED)
    )
    sampled = handle.sampled
    carrier[sampled_key] = "1" if sampled else "0"
    if handle.execution_id:  # an unsampled tree's stand-in has no id: the decision only
        correlation = handle.correlation_id or handle.execution_id
        carrier[parent_key] = handle.execution_id
        carrier[correlation_key] = correlation
        trace, span = _trace_ids.trace_id(correlation), _trace_ids.span_id(handle.execution_id)
    else:
        trace, span = secrets.token_hex(16), secrets.token_hex(8)
    if style == "w3c":
        carrier[TRACEPARENT] = f"00-{trace}-{span}-{'01' if sampled else '00'}"
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
    sampled: bool | None = None
    for key, value in carrier.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            continue
        lowered = key.lower().replace("_", "-")
        if lowered in _PARENT_KEYS_HTTPISH:
            parent = value.strip()
        elif lowered in _CORRELATION_KEYS_HTTPISH:
            correlation = value.strip()
        elif lowered in _SAMPLED_KEYS_HTTPISH:
            sampled = _flag(value)
        elif lowered == TRACEPARENT:
            traceparent = value
    parsed = None if traceparent is None else parse_traceparent(traceparent)
    if sampled is None and parsed is not None:
        sampled = parsed[2]
    if parent or correlation or parsed is None:
        context = PropagationContext(parent, correlation, sampled=sampled)
        return context or None
    return PropagationContext(otel_trace_id=parsed[0], otel_span_id=parsed[1], sampled=sampled)


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: str) -> tuple[str, str, bool] | None:
    """(trace id, span id, sampled flag) of a W3C ``traceparent``, or None when it is not valid."""
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    version, trace, span, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace) == {"0"} or set(span) == {"0"}:
        return None
    return trace, span, bool(int(flags, 16) & 1)


_PARENT_KEYS_HTTPISH = frozenset(k.replace("_", "-") for k in _PARENT_KEYS)
_CORRELATION_KEYS_HTTPISH = frozenset(k.replace("_", "-") for k in _CORRELATION_KEYS)
_SAMPLED_KEYS_HTTPISH = frozenset(k.replace("_", "-") for k in _SAMPLED_KEYS)


# os.environ keeps its data in a dict of encoded keys; looking there first spares every root
# execution two calls through the Mapping machinery when the variables are absent (the usual case).
_ENV_DATA = getattr(os.environ, "_data", None)
_ENV_KEYS = (os.fsencode(ENV_PARENT), os.fsencode(ENV_CORRELATION))
_ENV_SAMPLED_KEY = os.fsencode(ENV_SAMPLED)


def env_lineage_possible() -> bool:
    """False when none of the variables is in the environment (dict look-ups, no decoding)."""
    if not isinstance(_ENV_DATA, dict):  # pragma: no cover - not CPython's os.environ
        return True
    return _ENV_KEYS[0] in _ENV_DATA or _ENV_KEYS[1] in _ENV_DATA or _ENV_SAMPLED_KEY in _ENV_DATA


def env_sampled_possible() -> bool:
    """False when ``EXECLOG_SAMPLED`` is not in the environment (one dict look-up)."""
    if not isinstance(_ENV_DATA, dict):  # pragma: no cover - not CPython's os.environ
        return True
    return _ENV_SAMPLED_KEY in _ENV_DATA


def env_context() -> PropagationContext | None:
    """Lineage this process was started with (``EXECLOG_PARENT_ID`` and the others).

    ``EXECLOG_CORRELATION_ID`` and ``EXECLOG_SAMPLED`` complete it.
    """
    if not env_lineage_possible():
        return None
    parent = os.environ.get(ENV_PARENT)
    correlation = os.environ.get(ENV_CORRELATION)
    sampled = _flag(os.environ.get(ENV_SAMPLED, ""))
    if not parent and not correlation and sampled is None:
        return None
    return PropagationContext(parent or None, correlation or None, sampled=sampled)
