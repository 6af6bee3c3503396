"""Events and log records inside executions, read back with the store and the CLI.

    python examples/events_and_logs.py [DB]      # default ./execlog.db

A small import job: ``execlog.event`` marks what happened inside each step, the standard
``logging`` calls it already makes become events of the execution they ran in
(``ExecutionLogHandler``), and every printed log line carries the execution's ids
(``ExecutionContextFilter``). It ends by printing the tree with ``execlog tree --events``.
"""

from __future__ import annotations

import logging
import sys

import execlog
import execlog.logging
from execlog.cli import main as execlog_cli

log = logging.getLogger("imports")


def setup_logging() -> None:
    """Existing logging, plus execlog: records become events, lines show execution ids."""
    console = logging.StreamHandler(sys.stderr)
    console.addFilter(execlog.logging.ExecutionContextFilter())
    console.setFormatter(logging.Formatter("%(levelname)-7s [%(execution_id)s] %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(console)
    root.addHandler(execlog.logging.ExecutionLogHandler())


@execlog.traced_execution
def parse(lines: list[str]) -> list[int]:
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(int(line))
        except ValueError:
            log.warning("line %d skipped: %r is not a number", number, line)
    execlog.event("parsed", rows=len(rows), skipped=len(lines) - len(rows))
    return rows


@execlog.traced_execution
def store_rows(rows: list[int], api_key: str) -> int:
    url = "postgresql://importer:s3cret@db.internal/sales"
    execlog.event("connecting", url=url, api_key=api_key)
    log.info("storing %d rows", len(rows))
    return len(rows)


def main(db: str = "execlog.db") -> str:
    execlog.configure(db=db)
    setup_logging()
    with execlog.execution("import", kind="workflow") as run:
        rows = parse(["1", "2", "x", "4"])
        store_rows(rows, api_key="k-123")
    execlog.flush()

    with execlog.open_store(db) as store:
        for step in store.children(run.execution_id):
            for ev in store.events(step.execution_id):
                print(f"{step.name}: {ev.level} {ev.message} {ev.attributes}")
    print()
    execlog_cli(["tree", "--db", db, run.execution_id, "--events"])
    return run.execution_id


if __name__ == "__main__":
    main(*sys.argv[1:2])
