"""The runnable examples of events, logging and OpenTelemetry export (run as a user would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import execlog

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )


class TestExamples:
    def test_events_and_logs(self, tmp_path):
        """Events and log records land on their steps; secrets masked; ids on log lines."""
        db = tmp_path / "ex.db"
        done = run_example("events_and_logs.py", db)
        assert "parse: info parsed {'rows': 3, 'skipped': 1}" in done.stdout
        assert "s3cret" not in done.stdout
        assert "k-123" not in done.stdout
        assert "· " in done.stdout  # the tree with --events
        with execlog.open_store(str(db)) as store:
            (run,) = [e for e in store.recent() if e.name == "import"]
            parse, store_rows = store.children(run.execution_id)
            parse_events = [ev.message for ev in store.events(parse.execution_id)]
            store_events = [ev.message for ev in store.events(store_rows.execution_id)]
        assert ["line 3 skipped: 'x' is not a number", "parsed"] == parse_events
        assert ["connecting", "storing 3 rows"] == store_events
        assert f"[{parse.execution_id}] line 3 skipped" in done.stderr
        assert f"[{store_rows.execution_id}] storing 3 rows" in done.stderr

    def test_otel_export(self, tmp_path):
        """Spans printed by the console exporter; the root joined the program's span."""
        db = tmp_path / "ex.db"
        done = run_example("otel_export.py", db)
        assert '"service.name": "orders"' in done.stdout
        assert '"name": "checkout"' in done.stdout
        assert '"name": "card authorised"' in done.stdout
        assert "joined OpenTelemetry trace:" in done.stdout
        traceparent = done.stdout.rsplit("traceparent for the next service: ", 1)[1].strip()
        with execlog.open_store(str(db)) as store:
            (run,) = [e for e in store.recent() if e.name == "checkout"]
        assert traceparent.startswith(f"00-{run.correlation_id.replace('-', '')}-")
        assert {"otel.trace_id", "otel.span_id"} <= set(run.tags)
