"""The ``execlog_capture`` pytest fixture shipped in ``execlog.testing``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import execlog

if TYPE_CHECKING:
    from pathlib import Path

    from execlog.testing import CapturedExecutions


@execlog.traced_execution
def step(x: int) -> int:
    return x * 2


class TestExeclogCapture:
    def test_captures_roots_and_children(self, execlog_capture: CapturedExecutions) -> None:
        """What the code under test records is readable, oldest first, roots separated."""
        with execlog.execution("job"):
            step(1)
            step(2)
        [root] = execlog_capture.roots()
        assert "job" == root.name
        assert [2, 4] == [e.output for e in execlog_capture.named("step")]
        assert ["job", "step", "step"] == [e.name for e in execlog_capture.executions()]

    def test_records_into_a_private_database(
        self, execlog_capture: CapturedExecutions, tmp_path: object
    ) -> None:
        """The fixture's database is its own temporary file, not ./execlog.db."""
        step(3)
        assert execlog_capture.db.endswith("execlog-capture.db")
        assert 1 == len(execlog_capture.executions())

    @pytest.mark.parametrize("pure_python", [False, True], ids=["native", "python"])
    def test_child_processes_record_into_the_capture(
        self, execlog_capture: CapturedExecutions, tmp_path: Path, pure_python: bool
    ) -> None:
        """A child started with inject(dict(os.environ)), from another directory, records into
        the fixture's database, where the test reads it."""
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        child = (
            "import execlog\n"
            "with execlog.execution('child'):\n"
            "    pass\n"
            "assert execlog.flush(timeout=10)\n"
        )
        with execlog.execution("parent"):
            env = execlog.inject(dict(os.environ))
            if pure_python:
                env["EXECLOG_PURE_PYTHON"] = "1"
            result = subprocess.run(
                [sys.executable, "-c", child],
                env=env,
                cwd=elsewhere,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        assert 0 == result.returncode, result.stderr
        [parent] = execlog_capture.roots()
        [kid] = execlog_capture.named("child")
        assert parent.execution_id == kid.parent_execution_id
        assert not (elsewhere / "execlog.db").exists()

    def test_restores_previous_db(self, pytester: pytest.Pytester) -> None:
        """A user's test suite gets the fixture from the plugin; the db is restored after."""
        from execlog._recorder import RECORDER

        before = RECORDER.config.db
        pytester.makepyfile(
            """
            import execlog

            def test_inner(execlog_capture):
                with execlog.execution("inner"):
                    pass
                assert ["inner"] == [e.name for e in execlog_capture.executions()]
            """
        )
        result = pytester.runpytest_inprocess()
        result.assert_outcomes(passed=1)
        assert before == RECORDER.config.db


class TestPluginInStrictSuites:
    def test_execlog_imported_before_pytest_keeps_warnings_errors(
        self, pytester: pytest.Pytester
    ) -> None:
        """A suite with ``filterwarnings = error`` runs when execlog was imported before pytest
        loaded its plugins (a sitecustomize, a wrapper script): no PytestAssertRewriteWarning."""
        pytester.makeini("[pytest]\nfilterwarnings = error\n")
        pytester.makepyfile(
            """
            import execlog

            def test_inner(execlog_capture):
                with execlog.execution("inner"):
                    pass
                assert ["inner"] == [e.name for e in execlog_capture.executions()]
            """
        )
        script = (
            "import execlog, sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']))"
        )
        result = pytester.run(sys.executable, "-c", script)
        assert 0 == result.ret, result.stdout.str() + result.stderr.str()
        result.stdout.fnmatch_lines(["*1 passed*"])
        assert "PytestAssertRewriteWarning" not in result.stdout.str() + result.stderr.str()
