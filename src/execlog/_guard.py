"""The one guard between execlog's internals and the user's program.

Every hook that runs inside user code (``__exit__``, wrappers, the writer) goes through
:data:`guard`: an internal error is logged once on the ``execlog`` logger and swallowed,
unless ``EXECLOG_STRICT=1`` is set, in which case it is re-raised (execlog's own test suite
sets it so that internal errors fail tests instead of hiding).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["guard", "logger", "report_once", "strict"]

logger = logging.getLogger("execlog")


class _DuplicateFilter(logging.Filter):
    """Let each distinct (message, origin) through once per :func:`reset` period."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.getMessage(), record.pathname, record.lineno)
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen.add(key)
        return True

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a thread that is gone."""
        self._lock = threading.Lock()


_duplicates = _DuplicateFilter()
logger.addFilter(_duplicates)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_duplicates.after_fork)


def strict() -> bool:
    """Whether internal errors are re-raised (``EXECLOG_STRICT=1``)."""
    return os.environ.get("EXECLOG_STRICT", "") not in {"", "0"}


def report_once(message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message`` at WARNING once (repeats of the same message are filtered)."""
    logger.warning(message, *args, exc_info=exc_info)


def reset_reported() -> None:
    """Forget what was reported, so a new problem period reports again."""
    _duplicates.reset()


class _Guard(contextlib.ContextDecorator):
    """Swallow and log internal errors; re-raise them under ``EXECLOG_STRICT=1``."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        if strict():
            return False
        logger.error(
            "execlog internal error (recording continues): %s: %s",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        return True


guard = _Guard()
