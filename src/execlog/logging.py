"""Standard ``logging`` and executions: log records as events, execution ids in every record.

Example::

    import logging, execlog.logging

    handler = logging.StreamHandler()
    handler.addFilter(execlog.logging.ExecutionContextFilter())
    handler.setFormatter(logging.Formatter("%(execution_id)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().addHandler(execlog.logging.ExecutionLogHandler())

Both classes take the arguments of their ``logging`` base classes only, so
``logging.config.dictConfig`` builds them by name::

    "handlers": {"execlog": {"class": "execlog.logging.ExecutionLogHandler", "level": "INFO"}},
    "filters": {"ids": {"()": "execlog.logging.ExecutionContextFilter"}},

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from execlog._context import CAPTURING, current
from execlog._events import record_event
from execlog._execution import error_type_name
from execlog._guard import logger as _execlog_logger
from execlog._guard import strict

__all__ = ["ExecutionContextFilter", "ExecutionLogHandler"]

_INTERNAL = "execlog"  # execlog's own logger: its records never become events (no loops)


class ExecutionLogHandler(logging.Handler):
    """A ``logging.Handler`` that records each log record as an event on the current execution.

    Example::

        logging.getLogger().addHandler(execlog.logging.ExecutionLogHandler(level=logging.INFO))

        @execlog.traced_execution
        def load(path):
            log.info("reading %s", path)       # an event of load's execution

    The event has the record's level, logger name and message (``%`` arguments applied); a
    record with ``exc_info`` also gets ``exception.type``, ``exception.message`` and
    ``exception.stacktrace`` attributes, and every event gets ``code.filepath``,
    ``code.lineno`` and ``code.function.name``. Records emitted outside any execution, and
    those of execlog's own logger, are ignored. Nothing is written by the handler itself: the
    event goes through execlog's queue and writer like every record, so emitting costs about as
    much as ``execlog.event``. Never raises (``handleError`` is not used: a problem is logged
    once on the ``execlog`` logger).

    .. versionadded:: 0.2.0
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Record ``record`` as an event of the current execution, if there is one."""
        handle = current.get()
        if handle is None or handle is CAPTURING:
            return
        name = record.name
        if name == _INTERNAL or name.startswith("execlog."):
            return
        try:
            attributes: dict[str, Any] = {
                "code.filepath": record.pathname,
                "code.lineno": record.lineno,
                "code.function.name": record.funcName,
            }
            exc_info = record.exc_info
            if exc_info and exc_info[1] is not None:
                exc = exc_info[1]
                attributes["exception.type"] = error_type_name(exc)
                attributes["exception.message"] = _safe_str(exc)
                attributes["exception.stacktrace"] = record.exc_text or "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)
                )
            elif record.stack_info:
                attributes["code.stacktrace"] = record.stack_info
            record_event(
                handle,
                record.getMessage(),
                record.levelno,
                attributes,
                name,
            )
        except Exception as exc:
            if strict():
                raise
            _execlog_logger.error(
                "execlog internal error (recording continues): %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )


class ExecutionContextFilter(logging.Filter):
    """Add ``execution_id`` and ``correlation_id`` to every ``LogRecord`` (None outside one).

    Example::

        handler.addFilter(execlog.logging.ExecutionContextFilter())
        handler.setFormatter(logging.Formatter("%(correlation_id)s %(execution_id)s %(message)s"))

    It never drops a record; values a record already has (from ``extra=``) are kept.

    .. versionadded:: 0.2.0
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the two attributes and let the record through."""
        handle = current.get()
        if handle is None or handle is CAPTURING:
            execution_id = correlation_id = None
        else:
            execution_id = handle.execution_id or None
            correlation_id = handle.correlation_id or execution_id
        if not hasattr(record, "execution_id"):
            record.execution_id = execution_id
        if not hasattr(record, "correlation_id"):
            record.correlation_id = correlation_id
        return True


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__qualname__}>"
