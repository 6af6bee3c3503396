"""A throw-away PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` in a temp directory.

The server listens on a unix socket in that directory only (no TCP port), with fsync off. As
root, initdb refuses to run, so the cluster belongs to ``nobody`` (the directory is chowned).
Each test gets its own schema through the URL's ``options=-csearch_path=...``: creating one is
much cheaper than a database, and execlog's tables, partitions and temporary tables all follow
the search path.

``EXECLOG_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns "PostgreSQL is not installed here" from
a skip into a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from typing import Any

import pytest

__all__ = ["Cluster", "is_postgres", "run_sql", "start_cluster"]


def is_postgres(db: object) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def _bin_dir() -> str | None:
    def version(path: str) -> float:
        try:
            return float(path.split("/")[-3])
        except ValueError:
            return 0.0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class Cluster:
    """One running server; ``stop()``/``start()`` restart it in place (for fault tests)."""

    def __init__(self, bin_dir: str, root: str) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = os.path.join(root, "data")
        self.log = os.path.join(root, "server.log")
        self._as_owner: list[str] = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        self._schemas = itertools.count()
        self.fsync = False  # tests need no durability; benchmarks turn it on

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_owner, os.path.join(self.bin_dir, tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        if self._as_owner:
            shutil.chown(self.root, user="nobody")
        self._run(
            "initdb", "-D", self.data, "-U", "execlog", "--auth=trust", "-E", "UTF8", "--no-sync"
        )

    def start(self) -> None:
        fsync = "on" if self.fsync else "off"
        options = f"-k {self.root} -c listen_addresses='' -c fsync={fsync} -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def url(self, schema: str | None = None, password: str | None = None) -> str:
        user = "execlog" if password is None else f"execlog:{password}"
        url = f"postgresql://{user}@/postgres?host={self.root}"
        return url if schema is None else f"{url}&options=-csearch_path%3D{schema}"

    def new_schema(self) -> str:
        name = f"t{os.getpid()}_{next(self._schemas)}"
        run_sql(self.url(), f"CREATE SCHEMA {name}")
        return name

    def drop_schema(self, name: str) -> None:
        run_sql(self.url(), f"DROP SCHEMA IF EXISTS {name} CASCADE")


def start_cluster(*, fsync: bool = False) -> Cluster:
    """Start a cluster, or skip (fail under ``EXECLOG_REQUIRE_POSTGRES=1``) if impossible."""
    required = os.environ.get("EXECLOG_REQUIRE_POSTGRES") == "1"
    bin_dir = _bin_dir()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bin_dir = None
    if bin_dir is None:
        message = "PostgreSQL (initdb, pg_ctl) or psycopg is not installed here"
        if required:
            pytest.fail(message + " and EXECLOG_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    cluster = Cluster(bin_dir, tempfile.mkdtemp(prefix="execlog-pg-"))
    cluster.fsync = fsync
    cluster.init()
    cluster.start()
    return cluster


def run_sql(
    db: str, statement: str, params: Any = (), *, many: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` placeholders, as with sqlite3) on a PostgreSQL database."""
    import psycopg

    statement = statement.replace("?", "%s")
    with psycopg.connect(db, autocommit=True) as conn, conn.cursor() as cur:
        if many is not None:
            cur.executemany(statement, many)
            return []
        cur.execute(statement, params)
        return cur.fetchall() if cur.description is not None else []
