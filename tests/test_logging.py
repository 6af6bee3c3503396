"""``execlog.logging``: log records as events, execution ids on every record, dictConfig."""

from __future__ import annotations

import io
import logging
import logging.config
from typing import TYPE_CHECKING

import pytest

import execlog
import execlog.logging
from conftest import raw

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    """A logger of its own with an ExecutionLogHandler; removed afterwards."""
    logger = logging.getLogger("tests.execlog.logging")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = execlog.logging.ExecutionLogHandler()
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)


class TestExecutionLogHandler:
    def test_records_inside_executions_become_events(self, db, log, implementation):
        """Level, logger, message with arguments applied, and where it was logged."""

        @execlog.traced_execution
        def load(path):
            log.info("reading %s", path)
            log.debug("details")
            return execlog.current_execution().execution_id

        eid = load("a.csv")
        assert execlog.flush()
        with execlog.open_store(db) as store:
            events = store.events(eid)
        assert ["reading a.csv", "details"] == [e.message for e in events]
        assert ["info", "debug"] == [e.level for e in events]
        assert {"tests.execlog.logging"} == {e.logger for e in events}
        assert "load" == events[0].attributes["code.function.name"]
        assert events[0].attributes["code.filepath"].endswith("test_logging.py")
        assert isinstance(events[0].attributes["code.lineno"], int)

    def test_exception_is_formatted(self, db, log):
        """``log.exception`` records the exception's type, message and stack trace."""
        with execlog.execution("e") as ex:
            try:
                int("x")
            except ValueError:
                log.exception("parse failed")
        assert execlog.flush()
        with execlog.open_store(db) as store:
            (event,) = store.events(ex.execution_id)
        assert "error" == event.level
        assert "ValueError" == event.attributes["exception.type"]
        assert "invalid literal" in event.attributes["exception.message"]
        assert 'int("x")' in event.attributes["exception.stacktrace"]

    def test_outside_any_execution_ignored(self, db, log):
        """Records outside an execution are not events."""
        execlog.open_store(db, create=True).close()
        log.warning("nobody")
        assert execlog.flush()
        assert [] == raw(db, "SELECT * FROM execution_events")

    def test_execlog_own_records_ignored(self, db):
        """execlog's own logger never feeds the handler (no loop through the queue)."""
        handler = execlog.logging.ExecutionLogHandler()
        own = logging.getLogger("execlog")
        own.addHandler(handler)
        try:
            with execlog.execution("e") as ex:
                own.warning("internal note")
        finally:
            own.removeHandler(handler)
        assert execlog.flush()
        with execlog.open_store(db) as store:
            assert [] == store.events(ex.execution_id)

    def test_secrets_in_message_masked(self, db, log):
        """A URL password in a logged message is masked like every captured string."""
        with execlog.execution("e") as ex:
            log.info("connecting to %s", "postgresql://app:hunter2@db/x")
        assert execlog.flush()
        with execlog.open_store(db) as store:
            (event,) = store.events(ex.execution_id)
        assert "hunter2" not in event.message

    def test_internal_error_not_raised(self, db, log, monkeypatch, caplog):
        """A failure inside the handler is logged once on ``execlog``, never raised."""
        monkeypatch.delenv("EXECLOG_STRICT")

        def boom(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(execlog.logging, "record_event", boom)
        with caplog.at_level(logging.ERROR, logger="execlog"), execlog.execution("e"):
            log.info("fine")
        assert any("internal error" in r.getMessage() for r in caplog.records)


class TestExecutionContextFilter:
    def test_adds_ids_for_format_strings(self, db):
        """``%(execution_id)s`` and ``%(correlation_id)s`` work; None outside executions."""
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(execlog.logging.ExecutionContextFilter())
        handler.setFormatter(logging.Formatter("%(correlation_id)s %(execution_id)s %(message)s"))
        logger = logging.getLogger("tests.execlog.filter")
        logger.propagate = False
        logger.addHandler(handler)
        try:
            logger.warning("before")
            with execlog.execution("root") as root, execlog.execution("child") as child:
                logger.warning("inside")
        finally:
            logger.removeHandler(handler)
        lines = stream.getvalue().splitlines()
        assert "None None before" == lines[0]
        assert f"{root.execution_id} {child.execution_id} inside" == lines[1]

    def test_keeps_values_given_by_extra(self):
        """A record that already carries the attributes keeps them."""
        record = logging.LogRecord("x", logging.INFO, "f.py", 1, "m", None, None)
        record.execution_id = "given"
        assert execlog.logging.ExecutionContextFilter().filter(record)
        assert "given" == record.execution_id
        assert record.correlation_id is None


class TestDictConfig:
    def test_handler_and_filter_by_name(self, db):
        """Both classes are built by ``logging.config.dictConfig`` from their dotted names."""
        stream = io.StringIO()
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "filters": {"ids": {"()": "execlog.logging.ExecutionContextFilter"}},
                "formatters": {"f": {"format": "%(execution_id)s|%(message)s"}},
                "handlers": {
                    "events": {"class": "execlog.logging.ExecutionLogHandler", "level": "INFO"},
                    "text": {
                        "class": "logging.StreamHandler",
                        "stream": stream,
                        "filters": ["ids"],
                        "formatter": "f",
                    },
                },
                "loggers": {
                    "tests.dictconfig": {
                        "handlers": ["events", "text"],
                        "level": "DEBUG",
                        "propagate": False,
                    }
                },
            }
        )
        logger = logging.getLogger("tests.dictconfig")
        try:
            with execlog.execution("e") as ex:
                logger.info("hello")
                logger.debug("below the handler's level")
        finally:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
        assert f"{ex.execution_id}|hello" == stream.getvalue().splitlines()[0]
        assert execlog.flush()
        with execlog.open_store(db) as store:
            assert ["hello"] == [e.message for e in store.events(ex.execution_id)]
