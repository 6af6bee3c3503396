"""Versioned schema migrations for the SQLite store.

Each migration is applied in the same transaction as its ``schema_migrations`` row, so a
database is always at exactly one recorded version. Versions are registered in order and a
duplicate is rejected at import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from execlog.exceptions import SchemaError, StoreError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["LATEST", "MIGRATIONS", "Migration", "applied_version", "migrate", "pending"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step."""

    version: int
    description: str
    sql: str


MIGRATIONS: list[Migration] = []


def _register(version: int, description: str, sql: str) -> None:
    if MIGRATIONS and version <= MIGRATIONS[-1].version:
        msg = f"migration {version} registered out of order or twice"
        raise RuntimeError(msg)
    MIGRATIONS.append(Migration(version, description, sql))


_register(
    1,
    "executions table, lineage indexes, dropped-record counter",
    """
    CREATE TABLE executions (
        execution_id        TEXT    NOT NULL UNIQUE,
        name                TEXT    NOT NULL,
        kind                TEXT    NOT NULL,
        status              TEXT    NOT NULL,
        started_at          INTEGER NOT NULL,
        ended_at            INTEGER,
        duration_ms         REAL,
        inputs              TEXT,
        output              TEXT,
        error_type          TEXT,
        error_message       TEXT,
        error_stack         TEXT,
        parent_execution_id TEXT,
        correlation_id      TEXT    NOT NULL,
        trigger_kind        TEXT    NOT NULL,
        run_id              TEXT,
        tags                TEXT,
        pid                 INTEGER NOT NULL,
        thread_id           INTEGER NOT NULL,
        host                TEXT    NOT NULL
    );
    CREATE INDEX executions_correlation ON executions (correlation_id, started_at);
    CREATE INDEX executions_parent ON executions (parent_execution_id, started_at)
        WHERE parent_execution_id IS NOT NULL;
    CREATE INDEX executions_started ON executions (started_at);
    CREATE INDEX executions_running ON executions (host, pid) WHERE status = 'running';
    CREATE TABLE dropped_records (
        recorded_at INTEGER NOT NULL,
        host        TEXT    NOT NULL,
        pid         INTEGER NOT NULL,
        count       INTEGER NOT NULL
    );
    """,
)

_register(
    2,
    "indexes for listing by name and by a status other than success",
    # executions_name: list(name=...) newest first, with status and since/until checked in the
    # index; it also covers stats() (name, status, duration). executions_status is partial:
    # `success` rows (nearly all of them) never enter it, so it costs almost nothing to keep.
    # The query adds the literal `status <> 'success'` term that lets SQLite use it.
    """
    CREATE INDEX executions_name ON executions (name, started_at, status, duration_ms);
    CREATE INDEX executions_status ON executions (status, started_at)
        WHERE status <> 'success';
    """,
)

_register(
    3,
    "execution_events table: events and log records attached to executions",
    # Read by execution (oldest first: time, then insertion order). Events go with their
    # execution: the trigger covers Store.delete and Store.prune alike, in their transaction.
    """
    CREATE TABLE execution_events (
        execution_id TEXT    NOT NULL,
        at           INTEGER NOT NULL,
        level        TEXT    NOT NULL,
        message      TEXT    NOT NULL,
        attributes   TEXT,
        logger       TEXT
    );
    CREATE INDEX execution_events_execution ON execution_events (execution_id, at);
    CREATE TRIGGER execution_events_cascade AFTER DELETE ON executions
    BEGIN
        DELETE FROM execution_events WHERE execution_id = old.execution_id;
    END
    """,
)

_register(
    4,
    "index of root executions for the viewer's and the API's list of runs",
    # executions_roots: the newest runs (executions without a parent), newest first, without
    # walking every child row in between. Partial: child rows never enter it.
    """
    CREATE INDEX executions_roots ON executions (started_at, execution_id)
        WHERE parent_execution_id IS NULL;
    """,
)

_register(
    5,
    "indexes for statistics over a whole history and for text search of runs",
    # executions_duration: per name, durations in order: stats() without `since` counts a name
    # from the index and finds its percentiles by skipping to a rank, never sorting its rows.
    # executions_errors is partial: only rows with an error message enter it, so the runs'
    # text search reads failed rows only, from the index (all of them, or one run's).
    # executions_roots gains the correlation id: a search checks each root from the index.
    """
    CREATE INDEX executions_duration ON executions (name, duration_ms, status);
    CREATE INDEX executions_errors ON executions (correlation_id, error_message)
        WHERE error_message IS NOT NULL;
    DROP INDEX IF EXISTS executions_roots;
    CREATE INDEX executions_roots ON executions (started_at, execution_id, correlation_id)
        WHERE parent_execution_id IS NULL;
    """,
)

LATEST = MIGRATIONS[-1].version

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT    NOT NULL,
    applied_at  TEXT    NOT NULL
)
"""


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def applied_version(conn: sqlite3.Connection) -> int | None:
    """The schema version recorded in the database: 0 for an empty file, None if foreign.

    Raises:
        StoreError: the file holds tables of another application.
    """
    tables = _tables(conn)
    if "schema_migrations" not in tables:
        if tables - {"sqlite_sequence", "sqlite_stat1"}:
            raise StoreError(
                "not an execlog database: it has tables ("
                + ", ".join(sorted(tables)[:5])
                + ") but no schema_migrations"
            )
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _applied_versions(conn: sqlite3.Connection) -> set[int]:
    """Every version recorded in ``schema_migrations`` (empty when the table is absent)."""
    if "schema_migrations" not in _tables(conn):
        return set()
    return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}


def pending(conn: sqlite3.Connection) -> list[Migration]:
    """Migrations not yet applied (only reads).

    Every registered version missing from ``schema_migrations``, not only those above the
    highest: migrations developed side by side can land out of order (a database made while
    4 existed and 3 did not gets 3 when it is next opened).
    """
    applied_version(conn)  # raises for another application's database
    done = _applied_versions(conn)
    return [m for m in MIGRATIONS if m.version not in done]


def check_not_newer(version: int | None, where: str, latest: int = LATEST) -> None:
    """Raise :class:`SchemaError` when ``version`` is beyond what this library knows.

    ``latest``: the newest version of the backend's own migrations (SQLite's by default).
    """
    if version is not None and version > latest:
        msg = (
            f"{where}: schema version {version} is newer than this execlog understands "
            f"({latest}); upgrade execlog to read it (the database was not changed)"
        )
        raise SchemaError(msg)


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema up to :data:`LATEST` in one ``BEGIN IMMEDIATE`` transaction.

    Idempotent and safe when several processes open the same new file at once: the version is
    re-read inside the write transaction. Returns the number of migrations applied.

    Raises:
        SchemaError: the database is newer than this library (nothing is changed).
        StoreError: the database belongs to another application (nothing is changed).
    """
    version = applied_version(conn)
    check_not_newer(version, where)
    if version == LATEST and not pending(conn):
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = applied_version(conn)
        check_not_newer(version, where)
        done = _applied_versions(conn)
        todo = [m for m in MIGRATIONS if m.version not in done]  # as pending(), SQL constant
        if todo:
            conn.execute(_BOOTSTRAP)
        for m in todo:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (m.version, m.description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(todo)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no literal semicolons in the scripts).

    A trigger body holds semicolons of its own: pieces are joined until SQLite says the
    statement is complete.
    """
    import sqlite3  # noqa: PLC0415 - only the type is needed at import time

    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().rstrip(";").strip())
    return statements
