"""Sustained executions/s committed: 1 and 4 recording processes, one SQLite file vs PostgreSQL.

    .venv/bin/python benchmarks/throughput.py            # 100,000 executions per process
    .venv/bin/python benchmarks/throughput.py --quick    # smoke run: 2,000 per process
    .venv/bin/python benchmarks/throughput.py --json out.json

Each recording process runs ``@traced_execution`` calls as fast as it can (inputs and output
captured, the writer thread committing in batches), then ``execlog.flush()``. The time is from
the moment every process is ready (a shared start signal) to the last one's flush returning:
executions committed per second, all processes together. PostgreSQL is a throw-away cluster
started here (initdb + pg_ctl, unix socket, fsync on as a server would have it); SQLite is one
WAL file in a temporary directory. The two batch methods of the PostgreSQL backend are compared
too: COPY into a staging table then ``INSERT ... SELECT ... ON CONFLICT`` (what execlog does)
against one multi-row ``INSERT ... ON CONFLICT`` statement per batch, same rows, same
transactions. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pgcluster import Cluster, start_cluster

_RECORDER = """
import os, sys, time, execlog
db, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
execlog.configure(db=db, queue_size=1_000_000)

@execlog.traced_execution
def work(item, scale=2):
    return {"item": item, "scaled": item * scale}

work(-1)
assert execlog.flush(timeout=60)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
for i in range(count):
    work(i)
assert execlog.flush(timeout=600)
print("done", flush=True)
"""


def record(db: str, processes: int, per_process: int, folder: Path) -> float:
    """Executions/s committed by ``processes`` processes recording into ``db``."""
    go = folder / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_RECORDER), db, str(per_process), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    go.touch()
    for p in procs:
        out, _ = p.communicate(timeout=900)
        assert p.returncode == 0, out
        assert out.strip() == "done", out
    return processes * per_process / (time.perf_counter() - start)


def batch_methods(db: str, rows: int, batch: int = 512) -> dict[str, float]:
    """Rows/s of execlog's COPY + INSERT ... SELECT against one multi-row INSERT per batch."""
    import execlog
    from execlog._storage import COLUMNS, open_backend
    from execlog._storage import postgres as pg

    execlog.open_store(db).close()
    now = time.time_ns() // 1000

    def row(i: int, tag: str) -> tuple[Any, ...]:
        eid = f"{tag}-{i:09d}"
        return (
            *(eid, "work", "function", "success", now + i, now + i + 5, 0.005),
            *(b'{"item":1}', b'{"scaled":2}', None, None, None, None, eid, "manual"),
            *(None, b"{}", 1, 1, "bench"),
        )

    results = {}
    backend = open_backend(db)
    try:
        start = time.perf_counter()
        for first in range(0, rows, batch):
            backend.write([row(i, "copy") for i in range(first, first + batch)], [], 0)
        results["copy_then_insert_select"] = rows / (time.perf_counter() - start)
        conn = backend.conn  # type: ignore[attr-defined]
        values = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
        statement = (
            f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES "
            + ", ".join([values] * batch)
            + pg.UPSERT.split("WHERE final", 1)[1]
        )
        start = time.perf_counter()
        for first in range(0, rows, batch):
            params = [v for i in range(first, first + batch) for v in pg._cleaned(row(i, "insert"))]
            with conn.transaction():
                conn.execute(statement, params)
        results["multi_row_insert"] = rows / (time.perf_counter() - start)
    finally:
        backend.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 executions per process")
    parser.add_argument("--per-process", type=int, default=100_000)
    parser.add_argument(
        "--batch-rows", type=int, default=204_800, help="rows per batch-method comparison"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    per_process = 2_000 if args.quick else args.per_process
    folder = Path(tempfile.mkdtemp(prefix="execlog-throughput-"))
    cluster: Cluster = start_cluster(fsync=True)
    results: dict[str, Any] = {"per_process": per_process, "cpus": os.cpu_count()}
    try:
        for processes in (1, 4):
            sqlite_db = str(folder / f"runs-{processes}.db")
            results[f"sqlite_{processes}"] = record(sqlite_db, processes, per_process, folder)
            schema = cluster.new_schema()
            results[f"postgres_{processes}"] = record(
                cluster.url(schema), processes, per_process, folder
            )
        schema = cluster.new_schema()
        results["postgres_batch"] = batch_methods(
            cluster.url(schema), 20_480 if args.quick else args.batch_rows
        )
    finally:
        cluster.stop("fast")
        shutil.rmtree(cluster.root, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"executions/s committed ({per_process:,} per process, {os.cpu_count()} CPUs):")
    for processes in (1, 4):
        print(
            f"  {processes} process(es): SQLite {results[f'sqlite_{processes}']:>9,.0f}   "
            f"PostgreSQL {results[f'postgres_{processes}']:>9,.0f}"
        )
    print("PostgreSQL batch methods (rows/s, 512-row transactions):")
    for method, rate in results["postgres_batch"].items():
        print(f"  {method:<26} {rate:>9,.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
