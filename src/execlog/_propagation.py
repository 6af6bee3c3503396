"""Carrying lineage across process and network boundaries: ``inject``/``extract`` and env."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from execlog._context import current_execution

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

__all__ = ["PropagationContext", "env_context", "extract", "inject"]

ENV_PARENT = "EXECLOG_PARENT_ID"
ENV_CORRELATION = "EXECLOG_CORRELATION_ID"
ENV_DB = "EXECLOG_DB"
HTTP_PARENT = "Execlog-Parent-Id"
HTTP_CORRELATION = "Execlog-Correlation-Id"

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

    def __bool__(self) -> bool:
        """True when it carries a parent or a correlation id."""
        return bool(self.parent_execution_id or self.correlation_id)


def inject(carrier: C, style: Literal["env", "http"] = "env") -> C:
    """Write the current execution's lineage into ``carrier`` and return it.

    Example::

        env = execlog.inject(dict(os.environ))        # EXECLOG_PARENT_ID, ..., EXECLOG_DB
        subprocess.run(cmd, env=env)
        headers = execlog.inject({}, style="http")    # Execlog-Parent-Id, ...

    Outside any execution the carrier is returned unchanged. In the environment style it also
    sets ``EXECLOG_DB`` to the database this process records into (an absolute path, or a URL
    without credentials) unless the carrier already has one, so that a child process started
    from any working directory records where its parent does. A private ``:memory:`` database
    cannot be shared, and is not passed on.

    Args:
        carrier: A mutable mapping of ``str`` to ``str`` (environment, HTTP headers).
        style: ``"env"`` for environment variable names, ``"http"`` for header names.

    Returns:
        The same carrier.

    Raises:
        ValueError: ``style`` is neither ``"env"`` nor ``"http"``.

    .. versionadded:: 0.1.0
    """
    if style not in ("env", "http"):
        msg = f"style must be 'env' or 'http', got {style!r}"
        raise ValueError(msg)
    handle = current_execution()
    if handle is None:
        return carrier
    parent_key, correlation_key = (
        (ENV_PARENT, ENV_CORRELATION) if style == "env" else (HTTP_PARENT, HTTP_CORRELATION)
    )
    carrier[parent_key] = handle.execution_id
    carrier[correlation_key] = handle.correlation_id or handle.execution_id
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
    parent = correlation = None
    for key, value in carrier.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            continue
        lowered = key.lower().replace("_", "-")
        if lowered in _PARENT_KEYS_HTTPISH:
            parent = value.strip()
        elif lowered in _CORRELATION_KEYS_HTTPISH:
            correlation = value.strip()
    context = PropagationContext(parent, correlation)
    return context or None


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
