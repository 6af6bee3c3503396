"""The PostgreSQL backend (extra ``execlog[postgres]``): psycopg 3, parameterised SQL only.

The same :class:`~execlog._storage.Backend` as :mod:`execlog._storage.sqlite`, and the same
statements where the dialects agree; where they differ, the PostgreSQL text sits here under
the same name as SQLite's, so the two can be read side by side. A batch goes in one
transaction: ``COPY`` into a temporary staging table, then ``INSERT ... SELECT ... ON
CONFLICT`` into ``executions`` (running rows never overwrite, final rows replace a running
one). Every psycopg error leaves this module as :class:`StoreError`, its text free of the
password of the connection URL.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg.errors

from execlog._config import abandon_horizon_s
from execlog._storage import COLUMNS, EVENT_COLUMNS, LineageRows, Row, display_db
from execlog._storage import postgres_schema as schema
from execlog._storage.sqlite import (
    _BUCKET,
    HOST,
    histogram_statement,
    list_statement,
    pid_alive,
    runs_statement,
)
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from execlog._storage import IdColumn, ListQuery, RunRow, RunsQuery, StatsRow

__all__ = ["PostgresBackend"]

#: Seconds to wait for a connection (libpq's ``connect_timeout``) unless the URL says otherwise.
CONNECT_TIMEOUT_S = 5
#: TCP settings unless the URL gives its own: a server that vanished without closing the
#: connection (a failover, a cable pulled) is noticed in about half a minute, not after the
#: operating system's retransmissions (many minutes), and the writer reconnects.
TCP_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}

_COLUMN_LIST = ", ".join(COLUMNS)
_SELECT = f"SELECT {_COLUMN_LIST} FROM executions"  # noqa: S608 - constant
_E_COLUMNS = ", ".join(f"e.{c}" for c in COLUMNS)
_PARENT = COLUMNS.index("parent_execution_id")
_CORRELATION = COLUMNS.index("correlation_id")
_STARTED = COLUMNS.index("started_at")

# -- writing -----------------------------------------------------------------------------------

STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS execlog_staging "
    "(final BOOLEAN NOT NULL, LIKE executions) ON COMMIT DELETE ROWS"
)
COPY_STAGING = f"COPY execlog_staging (final, {_COLUMN_LIST}) FROM STDIN"
_FROM_STAGING = (
    f"INSERT INTO executions ({_COLUMN_LIST}) "  # noqa: S608 - constant
    f"SELECT {_COLUMN_LIST} FROM execlog_staging WHERE "
)
#: New ``running`` rows: never over an existing row (it may be final already).
INSERT_RUNNING = _FROM_STAGING + "NOT final ON CONFLICT (execution_id, started_at) DO NOTHING"
#: Final rows: replace the row of the same execution, except a finished one by a ``running`` one.
UPSERT = (
    _FROM_STAGING
    + "final ON CONFLICT (execution_id, started_at) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in {"execution_id", "started_at"})
    + " WHERE excluded.status <> 'running' OR executions.status = 'running'"
)
_EVENT_LIST = ", ".join(EVENT_COLUMNS)
COPY_EVENTS = f"COPY execution_events ({_EVENT_LIST}) FROM STDIN"
INSERT_DROPPED = (
    "INSERT INTO dropped_records (recorded_at, host, pid, count) VALUES (%s, %s, %s, %s)"
)

# -- reading (same names as sqlite.py's) ----------------------------------------------------

GET = f"{_SELECT} WHERE execution_id = %s"
#: Oldest first: by time, then in the order they were written.
EVENTS = (
    f"SELECT {_EVENT_LIST} FROM execution_events "  # noqa: S608 - constant
    "WHERE execution_id = %s ORDER BY at, seq"
)
CHILDREN = f"{_SELECT} WHERE parent_execution_id = %s ORDER BY started_at, execution_id"
CORRELATION = f"{_SELECT} WHERE correlation_id = %s ORDER BY started_at, execution_id"
ROOT = (
    f"{_SELECT} WHERE correlation_id = %s AND (parent_execution_id IS NULL "  # noqa: S608
    "OR parent_execution_id NOT IN "
    "(SELECT execution_id FROM executions WHERE correlation_id = %s)) "
    "ORDER BY started_at, execution_id LIMIT 1"
)
SIBLINGS = (
    f"{_SELECT} WHERE parent_execution_id = %s AND execution_id <> %s "
    "ORDER BY started_at, execution_id"
)
ROOT_SIBLINGS = (
    f"{_SELECT} WHERE correlation_id = %s AND parent_execution_id IS NULL "
    "AND execution_id <> %s ORDER BY started_at, execution_id"
)
#: Up the parent chain at most ``depth`` levels, root first (params: id, depth); ``seen`` is
#: the array of ids walked so far, so a chain that loops stops before it repeats one.
ANCESTORS = f"""
WITH RECURSIVE up(id, started, parent, level, seen) AS (
    SELECT execution_id, started_at, parent_execution_id, 0, ARRAY[execution_id]
    FROM executions WHERE execution_id = %s
    UNION ALL
    SELECT e.execution_id, e.started_at, e.parent_execution_id, up.level + 1,
           up.seen || e.execution_id
    FROM up JOIN executions AS e ON e.execution_id = up.parent
    WHERE up.level < %s AND e.execution_id <> ALL (up.seen)
)
SELECT {_E_COLUMNS} FROM up
JOIN executions AS e ON e.execution_id = up.id AND e.started_at = up.started
WHERE up.level > 0 ORDER BY up.level DESC
"""  # noqa: S608 - constant
#: Down the tree at most ``depth`` levels, level by level (params: id, depth, id); the start
#: is left out of the walk, which makes it end on loops (see sqlite.DESCENDANTS).
DESCENDANTS = f"""
WITH RECURSIVE down(id, started, level) AS (
    SELECT execution_id, started_at, 0 FROM executions WHERE execution_id = %s
    UNION ALL
    SELECT e.execution_id, e.started_at, down.level + 1
    FROM down JOIN executions AS e ON e.parent_execution_id = down.id
    WHERE down.level < %s AND e.execution_id <> %s
)
SELECT {_E_COLUMNS} FROM down
JOIN executions AS e ON e.execution_id = down.id AND e.started_at = down.started
WHERE down.level > 0 ORDER BY down.level, e.started_at, e.execution_id
"""  # noqa: S608 - constant
#: An execution and all its descendants (params: id, id); cycle-safe as above.
DELETE_TREE = """
WITH RECURSIVE down(id) AS (
    SELECT execution_id FROM executions WHERE execution_id = %s
    UNION ALL
    SELECT e.execution_id FROM down JOIN executions AS e ON e.parent_execution_id = down.id
    WHERE e.execution_id <> %s
)
DELETE FROM executions WHERE execution_id IN (SELECT id FROM down)
"""
PRUNE_CREATE = (
    'CREATE TEMP TABLE execlog_prune (correlation_id TEXT COLLATE "C" PRIMARY KEY) ON COMMIT DROP'
)
PRUNE_CANDIDATES = """
INSERT INTO execlog_prune (correlation_id)
SELECT DISTINCT e.correlation_id FROM executions AS e
WHERE e.started_at < %s AND NOT EXISTS (
    SELECT 1 FROM executions AS p
    WHERE p.execution_id = e.parent_execution_id AND p.correlation_id = e.correlation_id
)
"""
PRUNE_KEEP_RUNNING = """
DELETE FROM execlog_prune WHERE correlation_id IN (
    SELECT correlation_id FROM executions WHERE status = 'running'
)
"""
PRUNE_KEEP_REFERENCED = """
DELETE FROM execlog_prune WHERE correlation_id IN (
    SELECT p.correlation_id
    FROM execlog_prune AS d
    JOIN executions AS p ON p.correlation_id = d.correlation_id
    JOIN executions AS c ON c.parent_execution_id = p.execution_id
    WHERE c.correlation_id <> p.correlation_id
    AND c.correlation_id NOT IN (SELECT correlation_id FROM execlog_prune)
)
"""
PRUNE_DELETE = (
    "DELETE FROM executions WHERE correlation_id IN (SELECT correlation_id FROM execlog_prune)"
)
PRUNE_COUNT = (
    "SELECT COUNT(*) FROM executions "
    "WHERE correlation_id IN (SELECT correlation_id FROM execlog_prune)"
)
#: Id-prefix lookup, as sqlite.IDS_FROM (ids sort in byte order: the "C" collation).
IDS_FROM = (
    "SELECT execution_id FROM executions WHERE execution_id >= %s ORDER BY execution_id LIMIT %s"
)
CORRELATIONS_FROM = (
    "SELECT correlation_id FROM executions WHERE correlation_id >= %s "
    "GROUP BY correlation_id ORDER BY correlation_id LIMIT %s"
)
ID_BEFORE = "SELECT max(execution_id) FROM executions WHERE execution_id < %s"
ID_AFTER = "SELECT min(execution_id) FROM executions WHERE execution_id > %s"
#: Monthly partitions of ``executions`` (name, upper bound known from the name).
PARTITIONS = """
SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass('executions')
"""
#: Create a monthly partition (params: name, low, high): see postgres_schema's functions.
ADD_PARTITION = "SELECT execlog_add_partition(%s, %s, %s)"
#: Drop a partition holding only rows of pruned trees; its row count, or 0 if it stays.
DROP_PRUNED_PARTITION = "SELECT execlog_drop_pruned_partition(%s)"


def stats_statement(name: str | None, since_us: int | None) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``Store.stats``: nearest-rank percentiles, as SQLite's.

    ``percentile_disc(p)`` is the first duration whose cumulative share reaches ``p``: the
    value sqlite.stats_statement finds with ``cume_dist()``. NULL durations are left out of
    the percentiles and the maximum, and counted.
    """
    where = ["status <> 'running'"]
    params: list[Any] = []
    if name is not None:
        where.append("name = %s")
        params.append(name)
    if since_us is not None:
        where.append("started_at >= %s")
        params.append(since_us)
    statement = f"""
    SELECT name, COUNT(*), COUNT(*) FILTER (WHERE status = 'error'),
           percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms),
           percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms),
           MAX(duration_ms)
    FROM executions WHERE {" AND ".join(where)} GROUP BY name ORDER BY name
    """  # noqa: S608 - the conditions are constants above
    return statement, params


def _list_statement(query: ListQuery) -> tuple[str, list[Any]]:
    """sqlite.list_statement in PostgreSQL's words: no ``+`` hints, ``%s`` placeholders."""
    statement, params = list_statement(query)
    return statement.replace("+", "").replace("?", "%s"), params


def _runs_statement(query: RunsQuery) -> tuple[str, list[Any]]:
    """sqlite.runs_statement in PostgreSQL's words (no INDEXED BY, no ``+``, ``%s``).

    Always the plan that looks for the text in each run (one statement): measured on PostgreSQL,
    the plans SQLite takes after finding what the text matches were no faster, some slower.
    """
    statement, params = runs_statement(query)
    hints = (" INDEXED BY executions_roots", "+")
    return statement.replace(hints[0], "").replace(hints[1], "").replace("?", "%s"), params


#: How many executions of a correlation there are, failed and still running (param: cid).
RUN_COUNTS = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'error'), "
    "COUNT(*) FILTER (WHERE status = 'running') FROM executions WHERE correlation_id = %s"
)


def _histogram_statement(name: str | None, since_us: int | None) -> tuple[str, list[Any]]:
    """sqlite.histogram_statement in PostgreSQL's words (the same buckets, ``_BUCKET``)."""
    statement, params = histogram_statement(name, since_us)
    assert _BUCKET in statement
    return statement.replace(" INDEXED BY executions_started", "").replace("?", "%s"), params


def _cleaned(row: Row) -> list[Any]:
    """A row as COPY takes it: NaN (the hot path's NULL) as None, JSON bytes as text."""
    out: list[Any] = list(row)
    for i, value in enumerate(out):
        kind = type(value)
        if kind is float:
            if math.isnan(value):
                out[i] = None
        elif kind is bytes:
            out[i] = value.decode("utf-8", "replace")
    return out


def _bindable(value: Any) -> Any:
    """Text PostgreSQL takes: lone surrogates escaped, NUL characters spelled out."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


F = TypeVar("F", bound="Callable[..., Any]")


def _store_errors(method: F) -> F:
    """Report any database failure as :class:`StoreError`, with the password masked."""

    @functools.wraps(method)
    def wrapper(self: PostgresBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                self._drop_connection()
            msg = f"{self.where}: {self.masked(exc)}"
            raise StoreError(msg) from None

    return wrapper  # type: ignore[return-value]


def _reads(method: F) -> F:
    """A read: on a connection the server ended (a restart), reconnect and read once more.

    Then as :func:`_store_errors`. Only reads are retried: they change nothing.
    """

    @functools.wraps(method)
    def wrapper(self: PostgresBackend, *args: Any, **kwargs: Any) -> Any:
        broken_before = self._conn is None or self._conn.closed
        try:
            return method(self, *args, **kwargs)
        except psycopg.OperationalError:
            if broken_before:
                raise
            self._drop_connection()
            return method(self, *args, **kwargs)

    return _store_errors(wrapper)  # type: ignore[return-value]


Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresBackend:
    """One connection to an execlog PostgreSQL database (reconnected after a failure)."""

    def __init__(self, db: str) -> None:
        """Connect, create and migrate the schema when needed.

        Raises:
            StoreError: the server cannot be reached, or the database is another application's.
            SchemaError: the schema is newer than this library.
        """
        scheme, rest = db.split("://", 1)
        self.db = f"{scheme.lower()}://{rest}"  # libpq knows the scheme in lower case only
        self.where = display_db(db)
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._months: set[int] = set()
        self._staging = False  # the session's staging table exists (made by the first write)
        self._closed = False
        try:
            self._connect()
        except psycopg.Error as exc:
            self._drop_connection()
            msg = f"cannot open the database {self.where}: {self.masked(exc)}"
            raise StoreError(msg) from None
        except BaseException:
            self._drop_connection()
            raise

    def masked(self, exc: BaseException) -> str:
        """An error's text with the password of ``db`` (and of any URL in it) masked."""
        text = display_db(str(exc).strip())
        password = _password(self.db)
        return text.replace(password, "****") if password else text

    def _connect(self) -> Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        self._conn = None
        self._staging = False
        options: dict[str, Any] = {"autocommit": True}
        if "application_name" not in self.db and not os.environ.get("PGAPPNAME"):
            options["application_name"] = "execlog"
        if "connect_timeout" not in self.db and not os.environ.get("PGCONNECT_TIMEOUT"):
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        options.update(
            (k, v)
            for k, v in TCP_DEFAULTS.items()
            if k not in self.db and (k != "tcp_user_timeout" or psycopg.pq.version() >= 120000)
        )
        conn = psycopg.connect(self.db, **options)
        try:
            schema.migrate(conn, self.where)
            self._months = {
                m
                for (name,) in conn.execute(PARTITIONS)
                if (m := schema.month_of_name(str(name))) is not None
            }
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @property
    def conn(self) -> Connection:
        """The connection, opened again if the last one broke."""
        if self._closed:
            msg = f"the store {self.where} is closed"
            raise StoreError(msg)
        return self._connect()

    def replaced(self) -> bool:
        """A server database is never replaced under an open connection (as a file can be)."""
        return False

    # -- writing ------------------------------------------------------------------------

    @_store_errors
    def write(
        self,
        rows: Sequence[Row],
        running: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> int:
        """Commit one batch in one transaction; return how many rows could not be stored."""
        return self._store(rows, running, dropped, events)[1]

    @_store_errors
    def upsert(
        self, rows: Sequence[Row], running: Sequence[Row], events: Sequence[Row] = ()
    ) -> int:
        """Commit rows (upserted), running ones (if absent) and events; return rows stored."""
        return self._store(rows, running, 0, events)[0]

    def _store(
        self,
        rows: Sequence[Row],
        running: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> tuple[int, int]:
        """Write one batch; return (rows inserted or changed, rows that could not be stored)."""
        # One final row per execution (the last): ON CONFLICT updates a row once per statement.
        finals = list({row[0]: row for row in rows}.values()) if rows else []
        with self._lock:
            self._ensure_partitions([*running, *finals])
            try:
                try:
                    return self._write_once(running, finals, dropped, _cleaned, events), 0
                except psycopg.errors.CheckViolation:
                    # No partition for a row: another process's prune() dropped a month this
                    # one had seen. Make the partitions again and write once more.
                    self._months.clear()
                    self._ensure_partitions([*running, *finals])
                    return self._write_once(running, finals, dropped, _cleaned, events), 0
            except (psycopg.DataError, UnicodeError, ValueError):
                # Text PostgreSQL refuses (NUL, lone surrogates): again, every value made safe,
                # and a row that still fails is counted as dropped rather than block the rest.
                skipped = self._write_safely(running, finals, dropped, events)
                return len(running) + len(finals) - skipped, skipped

    def _write_once(
        self,
        running: Sequence[Row],
        finals: Sequence[Row],
        dropped: int,
        clean: Callable[[Row], list[Any]],
        events: Sequence[Row] = (),
    ) -> int:
        conn = self.conn
        if not self._staging:
            conn.execute(STAGING)
            self._staging = True
        changed = 0
        with conn.transaction(), conn.cursor() as cur:
            if running or finals:
                with cur.copy(COPY_STAGING) as copy:
                    for row in running:
                        copy.write_row([False, *clean(row)])
                    for row in finals:
                        copy.write_row([True, *clean(row)])
                if running:
                    changed += max(cur.execute(INSERT_RUNNING).rowcount, 0)
                if finals:
                    changed += max(cur.execute(UPSERT).rowcount, 0)
            if events:
                with cur.copy(COPY_EVENTS) as copy:
                    for event in events:
                        copy.write_row(clean(event))
            if dropped:
                cur.execute(INSERT_DROPPED, (time.time_ns() // 1000, HOST, os.getpid(), dropped))
        return changed

    def _write_safely(
        self,
        running: Sequence[Row],
        finals: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> int:
        def safe(row: Row) -> list[Any]:
            return [_bindable(v) for v in _cleaned(row)]

        try:
            self._write_once(running, finals, dropped, safe, events)
        except (psycopg.DataError, UnicodeError, ValueError):
            pass
        else:
            return 0
        skipped = 0
        for final, group in ((False, running), (True, finals)):
            for row in group:
                try:
                    self._write_once(*(([], [row]) if final else ([row], [])), 0, clean=safe)
                except (psycopg.DataError, UnicodeError, ValueError):
                    skipped += 1
        for event in events:
            try:
                self._write_once([], [], 0, safe, [event])
            except (psycopg.DataError, UnicodeError, ValueError):
                skipped += 1
        if dropped:
            self._write_once([], [], dropped, clean=safe)
        return skipped

    def _ensure_partitions(self, rows: Sequence[Row]) -> None:
        """Create the monthly partitions the rows need and this process has not seen yet."""
        needed = {schema.month_of(int(row[_STARTED])) for row in rows} - self._months
        needed.discard(None)
        if not needed:
            return
        conn = self.conn
        for month in sorted(m for m in needed if m is not None):
            low, high = schema.month_bounds(month)
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.MIGRATION_LOCK,))
                    conn.execute(ADD_PARTITION, (schema.partition_name(month), low, high))
            except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):
                pass  # another process made it just now
            self._months.add(month)

    @_store_errors
    def abandon_dead(self) -> int:
        """Mark ``running`` rows whose process is gone ``abandoned`` (as SQLite's backend)."""
        with self._lock:
            conn = self.conn
            pids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT pid FROM executions WHERE status = 'running' AND host = %s",
                    (HOST,),
                )
            ]
            dead = [p for p in pids if p != os.getpid() and not pid_alive(p)]
            changed = 0
            with conn.transaction():
                if dead:
                    changed += conn.execute(
                        "UPDATE executions SET status = 'abandoned' "
                        "WHERE status = 'running' AND host = %s AND pid = ANY(%s)",
                        (HOST, dead),
                    ).rowcount
                horizon = abandon_horizon_s()
                if horizon:
                    cutoff = time.time_ns() // 1000 - int(horizon * 1_000_000)
                    changed += conn.execute(
                        "UPDATE executions SET status = 'abandoned' "
                        "WHERE status = 'running' AND host <> %s AND started_at < %s",
                        (HOST, cutoff),
                    ).rowcount
            return changed

    # -- reading ------------------------------------------------------------------------

    def _all(self, statement: str, params: Sequence[Any]) -> list[Row]:
        with self._lock:
            return [tuple(r) for r in self.conn.execute(statement, params)]

    def _one(self, statement: str, params: Sequence[Any]) -> Row | None:
        found = self._all(statement, params)
        return found[0] if found else None

    @_reads
    def get(self, execution_id: str) -> Row | None:
        """The row of ``execution_id``, or None."""
        return self._one(GET, (execution_id,))

    @_reads
    def events(self, execution_id: str) -> list[Row]:
        """Event rows of ``execution_id``, oldest first."""
        return self._all(EVENTS, (execution_id,))

    @_reads
    def list_rows(self, query: ListQuery) -> list[Row]:
        """Rows matching ``query``: newest first (``started_at``, then id)."""
        statement, params = _list_statement(query)
        return self._all(statement, params)

    @_reads
    def children(self, execution_id: str) -> list[Row]:
        """Direct children of ``execution_id``, by start time."""
        return self._all(CHILDREN, (execution_id,))

    @_reads
    def correlation(self, correlation_id: str) -> list[Row]:
        """Every execution of one correlation, by start time."""
        return self._all(CORRELATION, (correlation_id,))

    @_reads
    def root(self, correlation_id: str) -> Row | None:
        """The execution of a correlation that has no parent inside it (the earliest such)."""
        return self._one(ROOT, (correlation_id, correlation_id))

    @_reads
    def lineage(self, execution_id: str, depth: int) -> LineageRows | None:
        """Ancestors (root first), descendants (breadth first), siblings; None if unknown."""
        with self._lock, self._snapshot():
            row = self._one(GET, (execution_id,))
            if row is None:
                return None
            ancestors = self._all(ANCESTORS, (execution_id, depth))
            descendants = self._all(DESCENDANTS, (execution_id, depth, execution_id))
            parent = row[_PARENT]
            if parent is None:
                siblings = self._all(ROOT_SIBLINGS, (row[_CORRELATION], execution_id))
            else:
                siblings = self._all(SIBLINGS, (parent, execution_id))
        return LineageRows(row, ancestors, descendants, siblings)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one state of the database (a repeatable-read transaction)."""
        conn = self.conn
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield
            return
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    @_reads
    def stats(self, name: str | None, since_us: int | None) -> list[StatsRow]:
        """Per name: finished executions, errors, p50/p95/max duration (computed in SQL)."""
        statement, params = stats_statement(name, since_us)
        return [
            (str(n), int(count), int(errors), p50, p95, high)
            for n, count, errors, p50, p95, high in self._all(statement, params)
        ]

    # -- removing -----------------------------------------------------------------------

    @_store_errors
    def delete(self, execution_id: str) -> int:
        """Remove ``execution_id`` and every descendant in one transaction; return the count."""
        with self._lock:
            conn = self.conn
            with conn.transaction():
                return int(conn.execute(DELETE_TREE, (execution_id, execution_id)).rowcount)

    @_store_errors
    def prune(self, before_us: int, *, dry_run: bool = False) -> int:
        """Remove whole correlation trees whose root started before ``before_us``.

        The trees chosen are SQLite's (see sqlite.SQLiteBackend.prune). A monthly partition
        that ends by the cut-off and holds only rows of those trees is dropped whole; the other
        rows are deleted. One transaction; ``dry_run`` counts and rolls back.
        """
        with self._lock:
            conn = self.conn
            removed = 0
            with conn.transaction() as tx:
                conn.execute(PRUNE_CREATE)
                conn.execute(PRUNE_CANDIDATES, (before_us,))
                conn.execute(PRUNE_KEEP_RUNNING)
                while conn.execute(PRUNE_KEEP_REFERENCED).rowcount > 0:
                    pass  # each round keeps the trees the previous round's kept trees point into
                if dry_run:
                    found = conn.execute(PRUNE_COUNT).fetchone()
                    removed = int(found[0]) if found is not None else 0
                    raise psycopg.Rollback(tx)
                removed += self._drop_pruned_partitions(conn, before_us)
                removed += conn.execute(PRUNE_DELETE).rowcount
            return removed

    def _drop_pruned_partitions(self, conn: Connection, before_us: int) -> int:
        removed = 0
        for (name,) in conn.execute(PARTITIONS).fetchall():
            month = schema.month_of_name(str(name))
            if month is None or schema.month_bounds(month)[1] > before_us:
                continue
            found = conn.execute(DROP_PRUNED_PARTITION, (str(name),)).fetchone()
            if found is not None and found[0]:
                removed += int(found[0])
                self._months.discard(month)
        return removed

    @_reads
    def dropped_total(self) -> int:
        """Sum of the drop counts writers persisted."""
        found = self._one("SELECT COALESCE(SUM(count), 0) FROM dropped_records", ())
        return int(found[0]) if found is not None else 0

    @_reads
    def runs(self, query: RunsQuery) -> list[RunRow]:
        """Root executions matching ``query``, newest first, each with its correlation's counts."""
        statement, params = _runs_statement(query)
        with self._lock, self._snapshot():
            found: list[RunRow] = []
            for row in self._all(statement, params):
                counts = self._one(RUN_COUNTS, (row[_CORRELATION],))
                assert counts is not None
                found.append((row, int(counts[0]), int(counts[1]), int(counts[2])))
        return found

    @_reads
    def histogram(self, name: str | None, since_us: int | None) -> list[tuple[str, int, int]]:
        """Finished executions per name and duration bucket."""
        statement, params = _histogram_statement(name, since_us)
        return [(str(n), int(b), int(c)) for n, b, c in self._all(statement, params)]

    @_reads
    def ids_from(self, column: IdColumn, start: str, limit: int) -> list[str]:
        """Distinct ids of ``column`` from ``start`` on, sorted, at most ``limit``."""
        statement = IDS_FROM if column == "execution_id" else CORRELATIONS_FROM
        return [str(r[0]) for r in self._all(statement, (start, limit))]

    @_reads
    def id_neighbours(self, execution_id: str) -> tuple[str | None, str | None]:
        """The execution ids just before and after ``execution_id``."""
        with self._lock, self._snapshot():
            before = self._one(ID_BEFORE, (execution_id,))
            after = self._one(ID_AFTER, (execution_id,))
        return (
            None if before is None else before[0],
            None if after is None else after[0],
        )

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self._closed = True
            self._drop_connection()

    def abandon(self) -> None:
        """Forget the connection without touching it (a forked child must not use it)."""
        _orphans.append(self._conn)
        self._conn = None
        self._closed = True


#: Connections inherited through fork: kept referenced so that a child never closes them (a
#: close would end the parent's session on the shared socket).
_orphans: list[Connection | None] = []


def _password(db: str) -> str | None:
    """The password in a connection URL, if it holds one."""
    try:
        value = psycopg.conninfo.conninfo_to_dict(db).get("password")
    except psycopg.Error:
        return None
    return str(value) if value else None
