"""Versioned schema of the PostgreSQL store, and its monthly partitions.

The same rules as SQLite's (:mod:`execlog._storage.migrations`): versions registered in order,
each applied in the transaction that records it in ``schema_migrations``, a newer schema refused
before anything is changed. Many processes may start at once: the transaction that migrates
first takes a transaction-level advisory lock, then reads the version again.

``executions`` is range-partitioned on ``started_at`` (microseconds since the epoch), one
partition per calendar month (UTC), created on demand by the writer before it inserts into a
new month. Two fixed partitions take what lies outside 1970-01 .. 9999-12. Creating and
dropping a partition goes through two small PL/pgSQL functions that quote its name with
``format('%I')``, so every statement the package sends is constant text with bound values.
Text that is sorted or compared (ids, names) uses the ``"C"`` collation: byte order, as SQLite
sorts it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING, Any

from execlog._storage.migrations import Migration, check_not_newer
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "LATEST",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "applied_version",
    "migrate",
    "month_bounds",
    "month_of",
    "partition_name",
]

#: Advisory lock key held while migrating or creating a partition ("execlog" in ASCII).
MIGRATION_LOCK = 0x657865636C6F67

MIGRATIONS: list[Migration] = []


def _register(version: int, description: str, sql: str) -> None:
    if MIGRATIONS and version <= MIGRATIONS[-1].version:
        msg = f"migration {version} registered out of order or twice"
        raise RuntimeError(msg)
    MIGRATIONS.append(Migration(version, description, sql))


_register(
    1,
    "partitioned executions table, lineage and listing indexes, dropped-record counter",
    # The primary key must hold the partition key: (execution_id, started_at). An execution's
    # running row and its final row carry the same start time, so they meet on that key.
    """
    CREATE TABLE executions (
        execution_id        TEXT COLLATE "C" NOT NULL,
        name                TEXT COLLATE "C" NOT NULL,
        kind                TEXT             NOT NULL,
        status              TEXT COLLATE "C" NOT NULL,
        started_at          BIGINT           NOT NULL,
        ended_at            BIGINT,
        duration_ms         DOUBLE PRECISION,
        inputs              TEXT,
        output              TEXT,
        error_type          TEXT,
        error_message       TEXT,
        error_stack         TEXT,
        parent_execution_id TEXT COLLATE "C",
        correlation_id      TEXT COLLATE "C" NOT NULL,
        trigger_kind        TEXT             NOT NULL,
        run_id              TEXT,
        tags                TEXT,
        pid                 BIGINT           NOT NULL,
        thread_id           BIGINT           NOT NULL,
        host                TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (execution_id, started_at)
    ) PARTITION BY RANGE (started_at);
    CREATE TABLE executions_before PARTITION OF executions
        FOR VALUES FROM (MINVALUE) TO (0);
    CREATE TABLE executions_after PARTITION OF executions
        FOR VALUES FROM (253402300800000000) TO (MAXVALUE);
    CREATE INDEX executions_correlation ON executions (correlation_id, started_at, execution_id);
    CREATE INDEX executions_parent ON executions (parent_execution_id, started_at, execution_id)
        WHERE parent_execution_id IS NOT NULL;
    CREATE INDEX executions_started ON executions (started_at, execution_id);
    CREATE INDEX executions_running ON executions (host, pid) WHERE status = 'running';
    CREATE INDEX executions_name ON executions (name, started_at, status, duration_ms);
    CREATE INDEX executions_status ON executions (status, started_at)
        WHERE status <> 'success';
    CREATE TABLE dropped_records (
        recorded_at BIGINT NOT NULL,
        host        TEXT   NOT NULL,
        pid         BIGINT NOT NULL,
        count       BIGINT NOT NULL
    );
    CREATE FUNCTION execlog_add_partition(part TEXT, low BIGINT, high BIGINT) RETURNS VOID
    LANGUAGE plpgsql AS $$
    BEGIN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF executions FOR VALUES FROM (%s) TO (%s)',
            part, low, high
        );
    END
    $$;
    CREATE FUNCTION execlog_drop_pruned_partition(part TEXT) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
    DECLARE
        only_pruned BOOLEAN;
        removed BIGINT;
    BEGIN
        EXECUTE format(
            'SELECT NOT EXISTS (SELECT 1 FROM %I AS e WHERE NOT EXISTS '
            '(SELECT 1 FROM execlog_prune AS d WHERE d.correlation_id = e.correlation_id))',
            part
        ) INTO only_pruned;
        IF NOT only_pruned THEN
            RETURN 0;
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', part) INTO removed;
        EXECUTE format('DROP TABLE %I', part);
        RETURN removed;
    END
    $$
    """,
)

_register(
    2,
    "index of root executions for the viewer's and the API's list of runs",
    # As SQLite's migration 4: the newest runs without walking the child rows in between.
    """
    CREATE INDEX executions_roots ON executions (started_at, execution_id)
        WHERE parent_execution_id IS NULL
    """,
)

_register(
    3,
    "execution_events table: events and log records attached to executions",
    # As SQLite's migration 3. `seq` keeps the order events were written in, for those at the
    # same microsecond. Events go with their execution: a row trigger covers Store.delete and
    # the rows prune() deletes; a partition prune() drops takes its events with it first.
    """
    CREATE TABLE execution_events (
        execution_id TEXT COLLATE "C" NOT NULL,
        at           BIGINT           NOT NULL,
        level        TEXT             NOT NULL,
        message      TEXT             NOT NULL,
        attributes   TEXT,
        logger       TEXT,
        seq          BIGINT GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX execution_events_execution ON execution_events (execution_id, at, seq);
    CREATE FUNCTION execlog_events_cascade() RETURNS TRIGGER
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM execution_events WHERE execution_id = OLD.execution_id;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER execution_events_cascade AFTER DELETE ON executions
        FOR EACH ROW EXECUTE FUNCTION execlog_events_cascade();
    CREATE OR REPLACE FUNCTION execlog_drop_pruned_partition(part TEXT) RETURNS BIGINT
    LANGUAGE plpgsql AS $$
    DECLARE
        only_pruned BOOLEAN;
        removed BIGINT;
    BEGIN
        EXECUTE format(
            'SELECT NOT EXISTS (SELECT 1 FROM %I AS e WHERE NOT EXISTS '
            '(SELECT 1 FROM execlog_prune AS d WHERE d.correlation_id = e.correlation_id))',
            part
        ) INTO only_pruned;
        IF NOT only_pruned THEN
            RETURN 0;
        END IF;
        EXECUTE format(
            'DELETE FROM execution_events AS v USING %I AS e '
            'WHERE v.execution_id = e.execution_id',
            part
        );
        EXECUTE format('SELECT count(*) FROM %I', part) INTO removed;
        EXECUTE format('DROP TABLE %I', part);
        RETURN removed;
    END
    $$
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

_MIGRATIONS_SHAPE = """
SELECT count(*) FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'schema_migrations'
AND column_name IN ('version', 'description', 'applied_at')
"""


def applied_version(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """The schema version recorded in the database's current schema: 0 when it has none.

    Raises:
        StoreError: an ``executions`` or ``schema_migrations`` table of another application.
    """
    # pg_tables, not to_regclass(): a plain query sees what another session committed while
    # this one waited for the advisory lock; the relation cache may not have caught up yet.
    tables = {
        str(name)
        for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename IN ('schema_migrations', 'executions')"
        )
    }
    has_migrations, has_executions = "schema_migrations" in tables, "executions" in tables
    if not has_migrations:
        if has_executions:
            raise StoreError(
                "not an execlog database: it has an executions table but no schema_migrations"
            )
        return 0
    shape = conn.execute(_MIGRATIONS_SHAPE).fetchone()
    if shape is None or shape[0] != 3:
        raise StoreError("not an execlog database: its schema_migrations table is another's")
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0) if row is not None else 0


def migrate(conn: psycopg.Connection[tuple[Any, ...]], where: str) -> int:
    """Bring the schema up to :data:`LATEST`; return how many migrations were applied.

    Raises:
        SchemaError: the database is newer than this library (nothing is changed).
        StoreError: the database belongs to another application (nothing is changed).
    """
    version = applied_version(conn)
    check_not_newer(version, where, LATEST)
    if version == LATEST:
        return 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = applied_version(conn)
        check_not_newer(version, where, LATEST)
        todo = [m for m in MIGRATIONS if m.version > version]
        if todo:
            conn.execute(_BOOTSTRAP)
        for m in todo:
            conn.execute(m.sql)  # one script (no parameters: psycopg sends it as it is)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (%s, %s, %s)",
                (m.version, m.description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
    return len(todo)


# -- monthly partitions ----------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Months with their own partition: 1970-01 (0) .. 9999-12; others go to the fixed two.
_LAST_MONTH = (9999 - 1970) * 12 + 11
_NAME = re.compile(r"^executions_p(\d{4})(\d{2})$")


def month_of(started_us: int) -> int | None:
    """Months since 1970-01 of a start time, or None outside 1970-01 .. 9999-12."""
    if started_us < 0:
        return None
    try:
        when = _EPOCH + dt.timedelta(microseconds=started_us)
    except OverflowError:
        return None
    return (when.year - 1970) * 12 + when.month - 1


def month_bounds(month: int) -> tuple[int, int]:
    """The start (inclusive) and end (exclusive) of a month, in microseconds since the epoch."""

    def start(m: int) -> int:
        if m > _LAST_MONTH:
            return 253402300800000000  # 10000-01-01
        year, index = divmod(m, 12)
        first = dt.datetime(1970 + year, index + 1, 1, tzinfo=dt.timezone.utc)
        return (first - _EPOCH) // dt.timedelta(microseconds=1)

    return start(month), start(month + 1)


def partition_name(month: int) -> str:
    """``executions_pYYYYMM``: built from an integer only, never from outside text."""
    year, index = divmod(month, 12)
    return f"executions_p{1970 + year:04d}{index + 1:02d}"


def month_of_name(name: str) -> int | None:
    """The month a partition's name stands for, or None for another table."""
    found = _NAME.match(name)
    if found is None:
        return None
    return (int(found.group(1)) - 1970) * 12 + int(found.group(2)) - 1
