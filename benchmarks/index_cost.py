"""What the indexes of schema version 5 cost the writer: SQLite rows/s with and without them.

    .venv/bin/python benchmarks/index_cost.py              # 200,000 rows, 3 rounds each
    .venv/bin/python benchmarks/index_cost.py --rows 50000 --rounds 1

The rows are those of ``test_queries.py`` (40 names of skewed popularity, 6% errors with a
message, trees of 10 to 50 executions), committed in 512-row transactions (the writer's default
batch) by the backend's own ``write()``, into a new file each round. "without" is the same
schema with migration 5 undone (its two indexes dropped, ``executions_roots`` as version 4 made
it); rounds alternate between the two so that a busy machine slows both alike. The time is the
writing thread's (wall and CPU), not a traced call's. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import execlog
from execlog._storage.sqlite import SQLiteBackend
from test_queries import generate

#: Migration 5 undone: the schema as version 4 left it.
UNDO_5 = """
DROP INDEX executions_duration;
DROP INDEX executions_errors;
DROP INDEX executions_roots;
CREATE INDEX executions_roots ON executions (started_at, execution_id)
    WHERE parent_execution_id IS NULL;
"""


def write_all(path: Path, rows: list[tuple[object, ...]], *, undo: bool) -> tuple[float, float]:
    """Rows/s committed into a new file (wall clock, then CPU time of this thread)."""
    execlog.open_store(path, create=True).close()
    if undo:
        import sqlite3

        conn = sqlite3.connect(path)
        conn.executescript(UNDO_5)
        conn.close()
    backend = SQLiteBackend(str(path))
    try:
        wall, cpu = time.perf_counter(), time.thread_time()
        for start in range(0, len(rows), 512):
            backend.write(rows[start : start + 512], [], 0)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    finally:
        backend.close()
    return len(rows) / wall, len(rows) / cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = list(itertools.islice(generate(args.rows)[0], args.rows))
    results: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for label in ("without", "with") if round_ % 2 == 0 else ("with", "without"):
                path = Path(folder) / f"{label}-{round_}.db"
                results[label].append(write_all(path, rows, undo=label == "without"))
    print(f"SQLite rows/s committed, {args.rows:,} rows in 512-row transactions (median):")
    for label, found in results.items():
        wall = statistics.median(w for w, _ in found)
        cpu = statistics.median(c for _, c in found)
        print(f"  {label:>7} migration 5's indexes: {wall:>9,.0f} (CPU: {cpu:>9,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
