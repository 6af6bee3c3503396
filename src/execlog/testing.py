"""Test helpers for code instrumented with execlog: the ``execlog_capture`` pytest fixture.

Installed as a pytest plugin (``pytest11`` entry point), so any project that depends on
execlog can write::

    def test_pipeline(execlog_capture):
        run_pipeline()
        [root] = execlog_capture.roots()
        assert root.status == "success"

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from execlog._recorder import RECORDER
from execlog.store import Event, Execution, open_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["CapturedExecutions", "execlog_capture"]


class CapturedExecutions:
    """What the code under test recorded into a private database."""

    def __init__(self, db: str) -> None:
        """Read from ``db`` (the fixture's temporary database)."""
        self.db = db

    def executions(self) -> list[Execution]:
        """Everything recorded so far, oldest first (flushes first)."""
        if not RECORDER.flush(timeout=10.0):
            msg = "execlog could not flush the captured executions within 10s"
            raise AssertionError(msg)
        with open_store(self.db, create=True) as store:
            return list(reversed(store.list(limit=1_000_000)))

    def events(self, execution: Execution | str) -> list[Event]:
        """Events recorded on one execution (an ``Execution`` or its id), oldest first.

        .. versionadded:: 0.2.0
        """
        if not RECORDER.flush(timeout=10.0):
            msg = "execlog could not flush the captured executions within 10s"
            raise AssertionError(msg)
        execution_id = execution if isinstance(execution, str) else execution.execution_id
        with open_store(self.db) as store:
            return store.events(execution_id)

    def roots(self) -> list[Execution]:
        """Recorded executions without a parent, oldest first."""
        return [e for e in self.executions() if e.parent_execution_id is None]

    def named(self, name: str) -> list[Execution]:
        """Recorded executions called ``name``, oldest first."""
        return [e for e in self.executions() if e.name == name]


@pytest.fixture
def execlog_capture(tmp_path: Path) -> Iterator[CapturedExecutions]:
    """Record into a temporary database for one test, then restore the previous settings.

    .. versionadded:: 0.1.0
    """
    previous = RECORDER.config
    db = str(tmp_path / "execlog-capture.db")
    RECORDER.configure(db=db)
    try:
        yield CapturedExecutions(db)
    finally:
        RECORDER.flush(timeout=10.0)
        RECORDER.configure(db=previous.db)
