"""The SQLite backend: WAL, busy timeout, one transaction per batch, parameterised SQL only.

The writer thread owns the only write connection (``BEGIN IMMEDIATE``); every reader opens its
own. A file is checked before anything is written to it: a file that is not SQLite, a database
of another application, or one with a newer schema raises and is left byte-for-byte unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from execlog._config import abandon_horizon_s
from execlog._storage import COLUMNS, EVENT_COLUMNS, HISTOGRAM_BOUNDS_MS, LineageRows, Row
from execlog._storage.migrations import applied_version, check_not_newer, migrate
from execlog._storage.seeks import (
    CHECK_EVERYTHING,
    DENSE_NAMES,
    SearchPlan,
    SearchStatements,
    StatsStatements,
    cume_dist_rank,
    plan_search,
    seek_stats,
)
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from execlog._storage import IdColumn, ListQuery, RunRow, RunsQuery, StatsRow

__all__ = [
    "SQLiteBackend",
    "list_statement",
    "pid_alive",
    "resolve",
    "runs_statement",
    "search_statements",
    "stats_statement",
]

#: How long one statement waits for another connection's lock before the writer retries.
BUSY_TIMEOUT_S = 1.0
HOST = socket.gethostname() or "localhost"

_MUTABLE = [c for c in COLUMNS if c != "execution_id"]
_chain = itertools.chain.from_iterable


_COLUMN_LIST = ", ".join(COLUMNS)
_VALUES = "(" + ", ".join("?" for _ in COLUMNS) + ")"
_INSERT = f"INSERT INTO executions ({_COLUMN_LIST}) VALUES "  # noqa: S608 - constant
_ON_CONFLICT_UPDATE = " ON CONFLICT (execution_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in _MUTABLE
)
_ON_CONFLICT_KEEP = " ON CONFLICT (execution_id) DO NOTHING"
UPSERT = _INSERT + _VALUES + _ON_CONFLICT_UPDATE
INSERT_RUNNING = _INSERT + _VALUES + _ON_CONFLICT_KEEP

#: Rows bound per INSERT statement: as many as SQLite allows, up to 1,600. The sqlite3 module
#: releases the GIL around every step, and while a traced thread keeps the interpreter busy
#: the writer waits up to the switch interval (5 ms) to get it back: the fewer statements per
#: batch, the faster the writer drains (1,600 rows instead of 500 doubled the rows written
#: while one thread records flat out; with idle producers it makes no difference).
#: SQLite before 3.32 allowed 999 bound variables per statement, 32766 since.
_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
ROWS_PER_STATEMENT = min(1600, _MAX_VARIABLES // len(COLUMNS))


def _statement_sizes(count: int, per_statement: int = ROWS_PER_STATEMENT) -> list[int]:
    """Split ``count`` rows into statements of a few fixed sizes.

    Full statements of ``per_statement`` rows, then powers of two: at most about ten
    distinct statements ever, so neither this module's cache nor sqlite3's statement cache
    grows with the batch lengths a program happens to produce.
    """
    sizes = [per_statement] * (count // per_statement)
    rest = count % per_statement
    power = 1 << (per_statement.bit_length() - 1)
    while rest:
        if rest >= power:
            sizes.append(power)
            rest -= power
        power >>= 1
    return sizes


@functools.lru_cache(maxsize=64)
def _multi_row(conflict: str, count: int) -> str:
    """``INSERT ... VALUES (...), (...) ON CONFLICT ...`` for ``count`` rows.

    Built from module constants only: no value or identifier from outside reaches the SQL.
    """
    return _INSERT + ", ".join([_VALUES] * count) + conflict


_SELECT = f"SELECT {_COLUMN_LIST} FROM executions"  # noqa: S608 - constant

_EVENT_LIST = ", ".join(EVENT_COLUMNS)
INSERT_EVENT = (
    f"INSERT INTO execution_events ({_EVENT_LIST}) "  # noqa: S608 - constant
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
#: Oldest first: by time, then in the order they were written.
EVENTS = (
    f"SELECT {_EVENT_LIST} FROM execution_events "  # noqa: S608 - constant
    "WHERE execution_id = ? ORDER BY at, rowid"
)

# -- the read and remove statements -------------------------------------------------------
# Every value is a bound parameter; only these constants and the column names above are ever
# spliced into SQL text. tests/test_store.py checks each statement's EXPLAIN QUERY PLAN.

_PARENT = COLUMNS.index("parent_execution_id")
_CORRELATION = COLUMNS.index("correlation_id")
_E_COLUMNS = ", ".join(f"e.{c}" for c in COLUMNS)
_BY_START = "executions INDEXED BY executions_started"

GET = f"{_SELECT} WHERE execution_id = ?"
CHILDREN = f"{_SELECT} WHERE parent_execution_id = ? ORDER BY started_at, execution_id"
CORRELATION = f"{_SELECT} WHERE correlation_id = ? ORDER BY started_at, execution_id"
#: The earliest execution of a correlation whose parent is not in it (params: cid, cid).
ROOT = (
    f"{_SELECT} WHERE correlation_id = ? AND (parent_execution_id IS NULL "  # noqa: S608
    "OR parent_execution_id NOT IN "
    "(SELECT execution_id FROM executions WHERE correlation_id = ?)) "
    "ORDER BY started_at, execution_id LIMIT 1"
)
#: Same parent, the execution itself left out (params: parent id, id).
SIBLINGS = (
    f"{_SELECT} WHERE parent_execution_id = ? AND execution_id <> ? "
    "ORDER BY started_at, execution_id"
)
#: The other roots (no parent) of a root's correlation (params: correlation id, id).
ROOT_SIBLINGS = (
    f"{_SELECT} WHERE correlation_id = ? AND parent_execution_id IS NULL "
    "AND execution_id <> ? ORDER BY started_at, execution_id"
)
#: Up the parent chain at most ``depth`` levels, returned root first (params: id, depth).
#: ``seen`` lists the ids walked so far between unit separators (char 31): a chain that loops
#: (hand-edited data) stops before it would repeat an execution.
ANCESTORS = f"""
WITH RECURSIVE up(rid, parent, level, seen) AS (
    SELECT rowid, parent_execution_id, 0, char(31) || execution_id || char(31)
    FROM executions WHERE execution_id = ?
    UNION ALL
    SELECT e.rowid, e.parent_execution_id, up.level + 1, up.seen || e.execution_id || char(31)
    FROM up JOIN executions AS e ON e.execution_id = up.parent
    WHERE up.level < ? AND instr(up.seen, char(31) || e.execution_id || char(31)) = 0
)
SELECT {_E_COLUMNS} FROM up JOIN executions AS e ON e.rowid = up.rid
WHERE up.level > 0 ORDER BY up.level DESC
"""  # noqa: S608 - constant
#: Down the tree at most ``depth`` levels, level by level, each level by start time (params:
#: id, depth, id). Execution ids are unique and each row has one parent, so the only execution a
#: walk down can reach twice is the one it started from (when its parent chain loops back to
#: it); leaving that one out makes the walk visit each descendant once and always end.
DESCENDANTS = f"""
WITH RECURSIVE down(rid, id, level) AS (
    SELECT rowid, execution_id, 0 FROM executions WHERE execution_id = ?
    UNION ALL
    SELECT e.rowid, e.execution_id, down.level + 1
    FROM down JOIN executions AS e ON e.parent_execution_id = down.id
    WHERE down.level < ? AND e.execution_id <> ?
)
SELECT {_E_COLUMNS} FROM down JOIN executions AS e ON e.rowid = down.rid
WHERE down.level > 0 ORDER BY down.level, e.started_at, e.execution_id
"""  # noqa: S608 - constant
#: An execution and all its descendants, however deep (params: id, id); cycle-safe as above.
#: (The statement starts with DELETE, not WITH, so that ``cursor.rowcount`` counts it.)
DELETE_TREE = """
DELETE FROM executions WHERE rowid IN (
    WITH RECURSIVE down(rid, id) AS (
        SELECT rowid, execution_id FROM executions WHERE execution_id = ?
        UNION ALL
        SELECT e.rowid, e.execution_id
        FROM down JOIN executions AS e ON e.parent_execution_id = down.id
        WHERE e.execution_id <> ?
    )
    SELECT rid FROM down
)
"""
#: prune(): the correlations to remove are collected in a temporary table, in one transaction.
PRUNE_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS execlog_prune (correlation_id TEXT PRIMARY KEY) WITHOUT ROWID"
)
#: Correlations with a root (no parent inside the correlation) started before the cut-off.
PRUNE_CANDIDATES = """
INSERT OR IGNORE INTO temp.execlog_prune (correlation_id)
SELECT e.correlation_id FROM executions AS e
WHERE e.started_at < ? AND NOT EXISTS (
    SELECT 1 FROM executions AS p
    WHERE p.execution_id = e.parent_execution_id AND p.correlation_id = e.correlation_id
)
"""
#: Keep trees that are still running.
PRUNE_KEEP_RUNNING = """
DELETE FROM temp.execlog_prune WHERE correlation_id IN (
    SELECT correlation_id FROM executions WHERE status = 'running'
)
"""
#: Keep trees that a kept execution points into (run until it removes nothing). CROSS JOIN
#: fixes the join order: from the candidate trees down to their children, never the reverse.
PRUNE_KEEP_REFERENCED = """
DELETE FROM temp.execlog_prune WHERE correlation_id IN (
    SELECT p.correlation_id
    FROM temp.execlog_prune AS d
    CROSS JOIN executions AS p ON p.correlation_id = d.correlation_id
    CROSS JOIN executions AS c ON c.parent_execution_id = p.execution_id
    WHERE c.correlation_id <> p.correlation_id
    AND c.correlation_id NOT IN (SELECT correlation_id FROM temp.execlog_prune)
)
"""
PRUNE_DELETE = (
    "DELETE FROM executions WHERE correlation_id IN (SELECT correlation_id FROM temp.execlog_prune)"
)
PRUNE_COUNT = (
    "SELECT COUNT(*) FROM executions "
    "WHERE correlation_id IN (SELECT correlation_id FROM temp.execlog_prune)"
)


#: Id-prefix lookup: the ids from a prefix on, in byte order, from the unique index (params:
#: prefix, limit); the caller keeps those that start with the prefix.
IDS_FROM = (
    "SELECT execution_id FROM executions WHERE execution_id >= ? ORDER BY execution_id LIMIT ?"
)
#: The same for correlation ids, each once, from the correlation index.
CORRELATIONS_FROM = (
    "SELECT correlation_id FROM executions WHERE correlation_id >= ? "
    "GROUP BY correlation_id ORDER BY correlation_id LIMIT ?"
)
#: The ids either side of one, for the shortest unique prefix (param: id).
ID_BEFORE = "SELECT max(execution_id) FROM executions WHERE execution_id < ?"
ID_AFTER = "SELECT min(execution_id) FROM executions WHERE execution_id > ?"


def list_statement(query: ListQuery) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``Store.list``.

    Exactly one index leads the search, chosen here rather than by SQLite (which has no
    statistics: execlog databases are never analysed): a correlation, else a name, else a
    status other than ``success``, else the start time. A unary ``+`` keeps the other equality
    terms out of index selection; they are still checked (from the index entry when it holds
    the column). ``status <> 'success'`` is the condition of the partial ``executions_status``
    index: stating it lets SQLite use that index for a bound status value.
    """
    lead = next(
        (
            column
            for column, value in (
                ("correlation_id", query.correlation_id),
                ("name", query.name),
                ("status", query.status),
            )
            if value is not None
        ),
        None,
    )
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("correlation_id", query.correlation_id),
        ("name", query.name),
        ("status", query.status),
    ):
        if value is not None:
            where.append(f"{'' if column == lead else '+'}{column} = ?")
            params.append(value)
    if lead == "status" and query.status != "success":
        where.append("status <> 'success'")
    if query.since_us is not None:
        where.append("started_at >= ?")
        params.append(query.since_us)
    if query.until_us is not None:
        where.append("started_at < ?")
        params.append(query.until_us)
    sql = _SELECT
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, execution_id DESC LIMIT ? OFFSET ?"
    params += [query.limit, query.offset]
    return sql, params


def stats_statement(name: str | None, since_us: int | None) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``Store.stats``.

    ``running`` executions are left out (no outcome and no duration yet). Percentiles are
    nearest-rank over the durations that exist: the p-th percentile is the smallest duration
    that at least p% of durations do not exceed, i.e. the first with ``cume_dist() >= p``.
    """
    where = ["status <> 'running'"]
    params: list[Any] = []
    # Without a name, SQLite prefers scanning the whole covering executions_name index to a
    # range of executions_started; for the usual `since` (the last hours or days) the range
    # is many times faster, so it is named explicitly.
    table = "executions" if name is not None or since_us is None else _BY_START
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if since_us is not None:
        where.append("started_at >= ?")
        params.append(since_us)
    condition = " AND ".join(where)
    sql = f"""
    SELECT totals.name, totals.count, totals.errors, shares.p50, shares.p95, totals.high
    FROM (
        SELECT name, COUNT(*) AS count, SUM(status = 'error') AS errors,
               MAX(duration_ms) AS high
        FROM {table} WHERE {condition} GROUP BY name
    ) AS totals LEFT JOIN (
        SELECT name,
               MIN(CASE WHEN share >= 0.5 THEN duration_ms END) AS p50,
               MIN(CASE WHEN share >= 0.95 THEN duration_ms END) AS p95
        FROM (
            SELECT name, duration_ms,
                   cume_dist() OVER (PARTITION BY name ORDER BY duration_ms) AS share
            FROM {table} WHERE {condition} AND duration_ms IS NOT NULL
        ) GROUP BY name
    ) AS shares ON shares.name = totals.name
    ORDER BY totals.name
    """  # noqa: S608 - table and condition are built from constants above
    return sql, params + params


_BY_DURATION = "executions INDEXED BY executions_duration"
#: Counting errors in the scan that counts the rows: a FILTER clause (SQLite 3.30) is cheaper.
_ERRORS = (
    "COUNT(*) FILTER (WHERE status = 'error')"
    if sqlite3.sqlite_version_info >= (3, 30, 0)
    else "SUM(status = 'error')"
)
#: Store.stats without ``since``, from the ``executions_duration`` index (see seeks.py).
STATS = StatsStatements(
    totals=(
        f"SELECT name, COUNT(*), {_ERRORS} FROM {_BY_DURATION} "  # noqa: S608 - constants only
        "GROUP BY name ORDER BY name"
    ),
    totals_of=(
        f"SELECT name, COUNT(*), {_ERRORS} FROM {_BY_DURATION} "  # noqa: S608 - constants only
        "WHERE name = ? GROUP BY name"
    ),
    running=(
        "SELECT name, COUNT(*), COUNT(duration_ms) FROM executions "
        "INDEXED BY executions_running WHERE status = 'running' GROUP BY name"
    ),
    untimed=(
        f"SELECT COUNT(*) FROM {_BY_DURATION} "  # noqa: S608 - constants only
        "WHERE name = ? AND duration_ms IS NULL"
    ),
    nth=(
        f"SELECT duration_ms FROM {_BY_DURATION} "  # noqa: S608 - constants only
        "WHERE name = ? AND duration_ms IS NOT NULL AND status <> 'running' "
        "ORDER BY duration_ms LIMIT 1 OFFSET ?"
    ),
    nth_from_top=(
        f"SELECT duration_ms FROM {_BY_DURATION} "  # noqa: S608 - constants only
        "WHERE name = ? AND duration_ms IS NOT NULL AND status <> 'running' "
        "ORDER BY duration_ms DESC LIMIT 1 OFFSET ?"
    ),
)

#: When the first execution started (NULL when there is none), from ``executions_started``.
FIRST_START = "SELECT MIN(started_at) FROM executions"

#: How many executions of a correlation there are, failed and still running (param: cid).
RUN_COUNTS = (
    "SELECT COUNT(*), COALESCE(SUM(status = 'error'), 0), COALESCE(SUM(status = 'running'), 0) "
    "FROM executions WHERE correlation_id = ?"
)


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards taken literally (ESCAPE)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: The distinct names that match a pattern: one seek in ``executions_name`` per name (param:
#: pattern). SQLite without statistics would read the whole index for ``DISTINCT name``.
MATCHING_NAMES = """
WITH RECURSIVE names(name) AS (
    SELECT MIN(name) FROM executions INDEXED BY executions_name
    UNION ALL
    SELECT (SELECT MIN(name) FROM executions INDEXED BY executions_name WHERE name > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name LIKE ? ESCAPE '\\'
"""
#: How many error messages match, up to a limit (params: pattern, limit): failed rows only,
#: read from their partial index.
ERROR_ROWS = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM executions INDEXED BY executions_errors "
    "WHERE error_message IS NOT NULL AND error_message LIKE ? ESCAPE '\\' LIMIT ?) AS capped"
)


def _marks(count: int) -> str:
    """``?, ?, ...``: ``count`` placeholders (only a number reaches the SQL text)."""
    return ", ".join(["?"] * int(count))


#: Executions with one of up to ``DENSE_NAMES`` names, counted up to a limit (params: the
#: names, padded with NULL, which matches none, then the limit): one statement for any count.
NAME_ROWS = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM executions INDEXED BY executions_name "  # noqa: S608
    f"WHERE name IN ({', '.join(['?'] * DENSE_NAMES)}) LIMIT ?) AS capped"
)


def search_statements() -> SearchStatements:
    """The statements that plan a runs search (see seeks.plan_search)."""
    return SearchStatements(MATCHING_NAMES, NAME_ROWS, ERROR_ROWS)


def runs_statement(query: RunsQuery, plan: SearchPlan = CHECK_EVERYTHING) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``Store.runs``: root executions, newest first.

    Led by the partial ``executions_roots`` index, newest first; the other filters are checked
    on the way. ``search`` matches the name or error message of any execution of the run: a
    root's correlation is one of those collected (names from ``executions_name``, error
    messages from ``executions_errors``), or its run's executions hold the text (the dense
    parts of ``plan``: names through ``executions_correlation``, error messages through
    ``executions_errors``).
    """
    where = ["parent_execution_id IS NULL"]
    params: list[Any] = []
    if query.name is not None:
        where.append("+name = ?")
        params.append(query.name)
    if query.status is not None:
        where.append("+status = ?")
        params.append(query.status)
    if query.since_us is not None:
        where.append("started_at >= ?")
        params.append(query.since_us)
    if query.until_us is not None:
        where.append("started_at < ?")
        params.append(query.until_us)
    if query.search:
        pattern = _like(query.search)
        found: list[str] = []
        if plan.names:
            found.append(
                "r.correlation_id IN (SELECT correlation_id FROM executions "  # noqa: S608
                f"INDEXED BY executions_name WHERE name IN ({_marks(len(plan.names))}))"
            )
            params += plan.names
        if plan.dense_names and plan.dense_errors:  # both in one read of each run's rows
            found.append(
                "EXISTS (SELECT 1 FROM executions AS m WHERE m.correlation_id = r.correlation_id "
                "AND (m.name LIKE ? ESCAPE '\\' OR m.error_message LIKE ? ESCAPE '\\'))"
            )
            params += [pattern, pattern]
        elif plan.dense_names:
            found.append(
                "EXISTS (SELECT 1 FROM executions AS m WHERE m.correlation_id = r.correlation_id "
                "AND m.name LIKE ? ESCAPE '\\')"
            )
            params.append(pattern)
        if plan.errors:
            found.append(
                "r.correlation_id IN (SELECT correlation_id FROM executions "
                "INDEXED BY executions_errors "
                "WHERE error_message IS NOT NULL AND error_message LIKE ? ESCAPE '\\')"
            )
            params.append(pattern)
        if plan.dense_errors and not plan.dense_names:
            found.append(
                "EXISTS (SELECT 1 FROM executions AS f INDEXED BY executions_errors "
                "WHERE f.correlation_id = r.correlation_id AND f.error_message IS NOT NULL "
                "AND f.error_message LIKE ? ESCAPE '\\')"
            )
            params.append(pattern)
        where.append("(" + (" OR ".join(found) if found else "1 = 0") + ")")
    sql = (
        f"SELECT {', '.join(f'r.{c}' for c in COLUMNS)} "  # noqa: S608 - constants only
        "FROM executions AS r INDEXED BY executions_roots WHERE "
        + " AND ".join(where)
        + " ORDER BY started_at DESC, execution_id DESC LIMIT ? OFFSET ?"
    )
    return sql, [*params, query.limit, query.offset]


#: The bucket of a duration: i for ``duration_ms < HISTOGRAM_BOUNDS_MS[i]``, else the last.
_BUCKET = (
    "CASE WHEN duration_ms < 1.0 THEN 0 WHEN duration_ms < 10.0 THEN 1 "
    "WHEN duration_ms < 100.0 THEN 2 WHEN duration_ms < 1000.0 THEN 3 "
    "WHEN duration_ms < 10000.0 THEN 4 WHEN duration_ms < 60000.0 THEN 5 "
    "WHEN duration_ms < 600000.0 THEN 6 ELSE 7 END"
)
assert (
    "CASE "
    + " ".join(f"WHEN duration_ms < {b!r} THEN {i}" for i, b in enumerate(HISTOGRAM_BOUNDS_MS))
    + f" ELSE {len(HISTOGRAM_BOUNDS_MS)} END"
    == _BUCKET
), "HISTOGRAM_BOUNDS_MS and _BUCKET disagree"


def histogram_statement(name: str | None, since_us: int | None) -> tuple[str, list[Any]]:
    """The SQL and parameters of the duration histogram (buckets of HISTOGRAM_BOUNDS_MS)."""
    where = ["status <> 'running'", "duration_ms IS NOT NULL"]
    params: list[Any] = []
    # As in stats_statement: a time range is led by executions_started, not by a scan of the
    # whole covering executions_name index.
    table = "executions" if name is not None or since_us is None else _BY_START
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if since_us is not None:
        where.append("started_at >= ?")
        params.append(since_us)
    sql = (
        f"SELECT name, {_BUCKET} AS bucket, COUNT(*) "  # noqa: S608 - constants only
        f"FROM {table} WHERE {' AND '.join(where)} "
        "GROUP BY name, bucket ORDER BY name, bucket"
    )
    return sql, params


_memory_keepalive: dict[str, sqlite3.Connection] = {}
_memory_lock = threading.Lock()


def resolve(db: str) -> tuple[str, bool, str]:
    """Map the ``db`` setting to (sqlite target, is_uri, display name)."""
    if db == ":memory:":
        uri = f"file:execlog-memory-{os.getpid()}?mode=memory&cache=shared"
        with _memory_lock:
            if uri not in _memory_keepalive:
                _memory_keepalive[uri] = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return uri, True, ":memory:"
    if db.startswith("sqlite:///"):
        db = (
            db[len("sqlite:///") - 1 :] if db.startswith("sqlite:////") else db[len("sqlite:///") :]
        )
    if db.startswith("file:"):
        return db, True, db
    return os.path.abspath(os.path.expanduser(db)), False, db


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover - unusual platforms
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in {b"Z", b"X"}


#: The statements seeks.py runs through :func:`_query`.
_SEEK_SQL = (
    STATS.totals,
    STATS.totals_of,
    STATS.running,
    STATS.untimed,
    STATS.nth,
    STATS.nth_from_top,
    MATCHING_NAMES,
    NAME_ROWS,
    ERROR_ROWS,
)


def _query(conn: sqlite3.Connection) -> Callable[[str, Sequence[Any]], list[Row]]:
    """A function running one of this module's seek statements on ``conn`` (for seeks.py).

    It runs the statement of ``_SEEK_SQL`` that equals the text it is given, so no other text
    reaches the database this way (anything else is an IndexError).
    """

    def run(sql: str, params: Sequence[Any]) -> list[Row]:
        known = [statement for statement in _SEEK_SQL if statement == sql]
        return [tuple(r) for r in conn.execute(known[0], params)]

    return run


F = TypeVar("F", bound=Callable[..., Any])


def _store_errors(method: F) -> F:
    """Report a damaged database found while reading as :class:`StoreError`, not sqlite3's."""

    @functools.wraps(method)
    def wrapper(self: SQLiteBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise
            msg = f"{self.where!r} cannot be read: {exc}"
            raise StoreError(msg) from exc

    return wrapper  # type: ignore[return-value]


#: How many busy timeouts the writer waits for another connection's lock before failing.
WRITE_ATTEMPTS = 3


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _bindable(value: Any) -> Any:
    """A value SQLite can bind: text with lone surrogates escaped, anything odd as text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, (int, float, bytes)):
        return value
    return repr(value)


def _insert_rows(conn: sqlite3.Connection, conflict: str, rows: Sequence[Row]) -> int:
    """Insert ``rows``, ``ROWS_PER_STATEMENT`` per statement; return how many were skipped.

    When a value cannot be bound (a lone surrogate in a name), the rows go one by one with
    their values made bindable, so one bad row never holds back the others.
    """
    try:
        start = 0
        for size in _statement_sizes(len(rows)):
            chunk = rows[start : start + size]
            conn.execute(_multi_row(conflict, len(chunk)), list(_chain(chunk)))
            start += size
    except sqlite3.Error:
        raise
    except Exception:  # upserts: rows already written above are simply written again
        single = _multi_row(conflict, 1)
        skipped = 0
        for row in rows:
            try:
                conn.execute(single, row)
            except sqlite3.Error:
                raise
            except Exception:
                try:
                    conn.execute(single, tuple(_bindable(v) for v in row))
                except sqlite3.Error:
                    raise
                except Exception:
                    skipped += 1
        return skipped
    return 0


_EVENT_VALUES = "(" + ", ".join("?" for _ in EVENT_COLUMNS) + ")"
EVENTS_PER_STATEMENT = min(1600, _MAX_VARIABLES // len(EVENT_COLUMNS))


@functools.lru_cache(maxsize=64)
def _multi_event(count: int) -> str:
    """``INSERT INTO execution_events ... VALUES (...), (...)`` for ``count`` rows (constants)."""
    return (
        INSERT_EVENT + ", " + ", ".join([_EVENT_VALUES] * (count - 1))
        if count > 1
        else INSERT_EVENT
    )


def _insert_events(conn: sqlite3.Connection, events: Sequence[Row]) -> int:
    """Append event rows, many per statement; return how many could not be stored.

    Sizes as for executions (:func:`_statement_sizes`). When a value cannot be bound, what
    this call inserted is undone and the rows go one by one with their values made bindable.
    """
    conn.execute("SAVEPOINT execlog_events")
    try:
        start = 0
        for size in _statement_sizes(len(events), EVENTS_PER_STATEMENT):
            chunk = events[start : start + size]
            conn.execute(_multi_event(len(chunk)), list(_chain(chunk)))
            start += size
    except sqlite3.Error:
        raise
    except Exception:
        conn.execute("ROLLBACK TO execlog_events")
        conn.execute("RELEASE execlog_events")
        skipped = 0
        for event in events:
            try:
                conn.execute(INSERT_EVENT, tuple(_bindable(v) for v in event))
            except sqlite3.Error:
                raise
            except Exception:
                skipped += 1
        return skipped
    conn.execute("RELEASE execlog_events")
    return 0


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Connection]:
    """Run ``begin``, then COMMIT; ROLLBACK on any exception (a rollback error is ignored)."""
    conn.execute(begin)
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create_private(path: str) -> None:
    """Create an empty database file readable by its owner only (0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteBackend:
    """One connection to an execlog SQLite database."""

    def __init__(self, db: str) -> None:
        """Open (creating and migrating when needed) the database named by ``db``.

        Raises:
            StoreError: not a SQLite database, another application's, corrupt or unreachable.
            SchemaError: the schema is newer than this library.
        """
        self.target, self.is_uri, self.where = resolve(db)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if not self.is_uri:
            try:
                _create_private(self.target)
            except OSError as exc:
                msg = f"cannot create the database {self.where!r}: {exc.strerror or exc}"
                raise StoreError(msg) from exc
        try:
            conn = sqlite3.connect(
                self.target,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                uri=self.is_uri,
            )
        except sqlite3.Error as exc:
            msg = f"cannot open the database {self.where!r}: {exc}"
            raise StoreError(msg) from exc
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._identity = self._stat()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            version = applied_version(conn)  # reads only: a foreign or newer file stays unchanged
            check_not_newer(version, self.where)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if not self.is_uri or "mode=memory" not in self.target:
                self._retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            conn.execute("PRAGMA synchronous = NORMAL")
            self._retry_locked(lambda: migrate(conn, self.where))
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                msg = f"{self.where!r} is locked by another connection: {exc}"
            else:
                msg = f"{self.where!r} is not a usable execlog database: {exc}"
            raise StoreError(msg) from exc

    @staticmethod
    def _retry_locked(action: Any, attempts: int = 20) -> Any:
        """Run ``action``, retrying while another connection holds the lock."""
        for attempt in range(attempts):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == attempts - 1:
                    raise
                time.sleep(min(0.01 * 2**attempt, 0.5))
        return None  # pragma: no cover

    def _stat(self) -> tuple[int, int] | None:
        if self.is_uri:
            return None
        try:
            st = os.stat(self.target)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def replaced(self) -> bool:
        """Whether the file was deleted or replaced since it was opened (writes would be lost)."""
        return self._identity is not None and self._stat() != self._identity

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection."""
        if self._conn is None:
            msg = f"the store {self.where!r} is closed"
            raise StoreError(msg)
        return self._conn

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (savepoint when nested); rolled back on any exception."""
        with self._lock:
            conn = self.conn
            if conn.in_transaction:
                conn.execute("SAVEPOINT execlog_atomic")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK TO execlog_atomic")
                    conn.execute("RELEASE execlog_atomic")
                    raise
                conn.execute("RELEASE execlog_atomic")
                return
            with _transaction(conn, "BEGIN IMMEDIATE"):
                yield conn

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        rows: Sequence[Row],
        running: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> int:
        """Commit one batch in one transaction; return how many rows could not be stored.

        Waiting for another writer's lock is retried for a few busy timeouts before it counts
        as a failure: several processes sharing one file is normal, not an error.
        """
        for attempt in range(WRITE_ATTEMPTS):
            try:
                return self._write_once(rows, running, dropped, events)
            except sqlite3.OperationalError as exc:
                if attempt == WRITE_ATTEMPTS - 1 or not _is_busy(exc):
                    raise
        return 0  # pragma: no cover - the loop returns or raises

    def _write_once(
        self, rows: Sequence[Row], running: Sequence[Row], dropped: int, events: Sequence[Row]
    ) -> int:
        skipped = 0
        with self.atomic() as conn:
            if events:
                skipped += _insert_events(conn, events)
            if running:
                skipped += _insert_rows(conn, _ON_CONFLICT_KEEP, running)
            if rows:
                skipped += _insert_rows(conn, _ON_CONFLICT_UPDATE, rows)
            if dropped:
                conn.execute(
                    "INSERT INTO dropped_records (recorded_at, host, pid, count) "
                    "VALUES (?, ?, ?, ?)",
                    (time.time_ns() // 1000, HOST, os.getpid(), dropped),
                )
        return skipped

    def upsert(
        self, rows: Sequence[Row], running: Sequence[Row], events: Sequence[Row] = ()
    ) -> int:
        """Commit rows (upserted), running ones (if absent) and events; return rows stored."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.atomic() as conn:
                    before = conn.total_changes
                    if running:
                        _insert_rows(conn, _ON_CONFLICT_KEEP, running)
                    if rows:
                        _insert_rows(conn, _ON_CONFLICT_UPDATE, rows)
                    changed = conn.total_changes - before
                    if events:
                        _insert_events(conn, events)
                    return changed
            except sqlite3.OperationalError as exc:
                if attempt == WRITE_ATTEMPTS - 1 or not _is_busy(exc):
                    raise
        return 0  # pragma: no cover - the loop returns or raises

    def abandon_dead(self) -> int:
        """Mark ``running`` rows whose process is gone ``abandoned``; return how many.

        On this host: the process no longer exists. On other hosts, whose processes cannot be
        asked: the execution started longer ago than ``EXECLOG_ABANDON_AFTER`` seconds (unset
        or ``0``: never). Should such an execution still end, its final row replaces
        ``abandoned`` with the real status.
        """
        changed = self._abandon_dead_here()
        horizon = abandon_horizon_s()
        if horizon:
            # A horizon longer than recorded time (EXECLOG_ABANDON_AFTER=1e300) must still
            # bind as an SQLite integer: the oldest instant it can hold abandons nothing.
            cutoff = max(time.time_ns() // 1000 - int(horizon * 1_000_000), -(2**63))
            with self.atomic() as conn:
                changed += conn.execute(
                    "UPDATE executions SET status = 'abandoned' "
                    "WHERE status = 'running' AND host <> ? AND started_at < ?",
                    (HOST, cutoff),
                ).rowcount
        return changed

    def _abandon_dead_here(self) -> int:
        with self._lock:
            pids = [
                int(r[0])
                for r in self.conn.execute(
                    "SELECT DISTINCT pid FROM executions WHERE status = 'running' AND host = ?",
                    (HOST,),
                )
            ]
            dead = [p for p in pids if p != os.getpid() and not pid_alive(p)]
            if not dead:
                return 0
            changed = 0
            with self.atomic() as conn:
                for pid in dead:
                    cur = conn.execute(
                        "UPDATE executions SET status = 'abandoned' "
                        "WHERE status = 'running' AND host = ? AND pid = ?",
                        (HOST, pid),
                    )
                    changed += cur.rowcount
            return changed

    # -- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that all see one state of the database (a read transaction)."""
        with self._lock:
            conn = self.conn
            if conn.in_transaction:
                yield conn
                return
            with _transaction(conn, "BEGIN"):
                yield conn

    @_store_errors
    def get(self, execution_id: str) -> Row | None:
        """The row of ``execution_id``, or None."""
        with self._lock:
            row = self.conn.execute(GET, (execution_id,)).fetchone()
        return None if row is None else tuple(row)

    @_store_errors
    def events(self, execution_id: str) -> list[Row]:
        """Event rows of ``execution_id``, oldest first."""
        with self._lock:
            return [tuple(r) for r in self.conn.execute(EVENTS, (execution_id,))]

    @_store_errors
    def list_rows(self, query: ListQuery) -> list[Row]:
        """Rows matching ``query``: newest first (``started_at``, then id)."""
        sql, params = list_statement(query)
        with self._lock:
            return [tuple(r) for r in self.conn.execute(sql, params)]

    @_store_errors
    def children(self, execution_id: str) -> list[Row]:
        """Direct children of ``execution_id``, by start time."""
        with self._lock:
            return [tuple(r) for r in self.conn.execute(CHILDREN, (execution_id,))]

    @_store_errors
    def correlation(self, correlation_id: str) -> list[Row]:
        """Every execution of one correlation, by start time."""
        with self._lock:
            return [tuple(r) for r in self.conn.execute(CORRELATION, (correlation_id,))]

    @_store_errors
    def root(self, correlation_id: str) -> Row | None:
        """The execution of a correlation that has no parent inside it (the earliest such)."""
        with self._lock:
            row = self.conn.execute(ROOT, (correlation_id, correlation_id)).fetchone()
        return None if row is None else tuple(row)

    @_store_errors
    def lineage(self, execution_id: str, depth: int) -> LineageRows | None:
        """Ancestors (root first), descendants (breadth first), siblings; None if unknown."""
        with self.snapshot() as conn:
            row = conn.execute(GET, (execution_id,)).fetchone()
            if row is None:
                return None
            row = tuple(row)
            ancestors = [tuple(r) for r in conn.execute(ANCESTORS, (execution_id, depth))]
            descendants = [
                tuple(r) for r in conn.execute(DESCENDANTS, (execution_id, depth, execution_id))
            ]
            parent = row[_PARENT]
            if parent is None:
                cur = conn.execute(ROOT_SIBLINGS, (row[_CORRELATION], execution_id))
            else:
                cur = conn.execute(SIBLINGS, (parent, execution_id))
            siblings = [tuple(r) for r in cur]
        return LineageRows(row, ancestors, descendants, siblings)

    @_store_errors
    def stats(self, name: str | None, since_us: int | None) -> list[StatsRow]:
        """Per name: finished executions, errors, p50/p95/max duration (computed in SQL)."""
        if sqlite3.sqlite_version_info < (3, 25, 0):  # pragma: no cover - old system SQLite
            msg = f"stats() needs SQLite 3.25 or newer (window functions); {sqlite3.sqlite_version}"
            raise StoreError(msg)
        with self.snapshot() as conn:
            # A `since` before the first execution leaves nothing out: the whole history.
            if since_us is None or since_us <= (conn.execute(FIRST_START).fetchone()[0] or 0):
                return seek_stats(_query(conn), STATS, name, cume_dist_rank)
            sql, params = stats_statement(name, since_us)
            return [
                (str(n), int(count), int(errors), p50, p95, high)
                for n, count, errors, p50, p95, high in conn.execute(sql, params)
            ]

    @_store_errors
    def runs(self, query: RunsQuery) -> list[RunRow]:
        """Root executions matching ``query``, newest first, each with its correlation's counts."""
        with self.snapshot() as conn:
            plan = CHECK_EVERYTHING
            if query.search:
                plan = plan_search(_query(conn), search_statements(), _like(query.search))
                if plan.empty:
                    return []
            sql, params = runs_statement(query, plan)
            roots = [tuple(r) for r in conn.execute(sql, params)]
            found: list[RunRow] = []
            for row in roots:
                total, errors, running = conn.execute(RUN_COUNTS, (row[_CORRELATION],)).fetchone()
                found.append((row, int(total), int(errors), int(running)))
        return found

    @_store_errors
    def histogram(self, name: str | None, since_us: int | None) -> list[tuple[str, int, int]]:
        """Finished executions per name and duration bucket."""
        sql, params = histogram_statement(name, since_us)
        with self._lock:
            return [(str(n), int(b), int(c)) for n, b, c in self.conn.execute(sql, params)]

    # -- removing -----------------------------------------------------------------------

    @_store_errors
    def delete(self, execution_id: str) -> int:
        """Remove ``execution_id`` and every descendant in one transaction; return the count."""

        def run() -> int:
            with self.atomic() as conn:
                return int(conn.execute(DELETE_TREE, (execution_id, execution_id)).rowcount)

        return self._removing(run)

    @_store_errors
    def prune(self, before_us: int, *, dry_run: bool = False) -> int:
        """Remove whole correlation trees whose root started before ``before_us``.

        A tree is kept while it still has a ``running`` execution, or while an execution that
        stays (in a newer tree, or in another kept one) names one of its executions as parent:
        nothing is ever left pointing at a parent that was removed. Everything happens in one
        transaction. With ``dry_run``, count what would go and change nothing.
        """

        def run() -> int:
            with self._lock:
                if dry_run:
                    with self.snapshot() as conn:
                        return self._prune_in(conn, before_us, PRUNE_COUNT)
                with self.atomic() as conn:
                    return self._prune_in(conn, before_us, PRUNE_DELETE)

        return self._removing(run)

    @staticmethod
    def _prune_in(conn: sqlite3.Connection, before_us: int, final: str) -> int:
        conn.execute(PRUNE_CREATE)
        try:
            conn.execute("DELETE FROM temp.execlog_prune")
            conn.execute(PRUNE_CANDIDATES, (before_us,))
            conn.execute(PRUNE_KEEP_RUNNING)
            while conn.execute(PRUNE_KEEP_REFERENCED).rowcount > 0:
                pass  # each round keeps the trees the previous round's kept trees point into
            cur = conn.execute(final)
            return int(cur.rowcount if final is PRUNE_DELETE else cur.fetchone()[0])
        finally:
            conn.execute("DROP TABLE IF EXISTS temp.execlog_prune")

    def _removing(self, action: Callable[[], int]) -> int:
        """Run a removing transaction, waiting for a busy writer; raise StoreError if it fails."""
        try:
            return int(self._retry_locked(action))
        except sqlite3.Error as exc:
            msg = f"cannot remove executions from {self.where!r}: {exc}"
            raise StoreError(msg) from exc

    @_store_errors
    def dropped_total(self) -> int:
        """Sum of the drop counts writers persisted."""
        with self._lock:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(count), 0) FROM dropped_records"
            ).fetchone()
        return int(row[0])

    @_store_errors
    def ids_from(self, column: IdColumn, start: str, limit: int) -> list[str]:
        """Distinct ids of ``column`` from ``start`` on, sorted, at most ``limit``."""
        sql = IDS_FROM if column == "execution_id" else CORRELATIONS_FROM
        with self._lock:
            return [str(r[0]) for r in self.conn.execute(sql, (start, limit))]

    @_store_errors
    def id_neighbours(self, execution_id: str) -> tuple[str | None, str | None]:
        """The execution ids just before and after ``execution_id``."""
        with self.snapshot() as conn:
            before = conn.execute(ID_BEFORE, (execution_id,)).fetchone()[0]
            after = conn.execute(ID_AFTER, (execution_id,)).fetchone()[0]
        return before, after

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def abandon(self) -> None:
        """Forget the connection without touching it (a forked child must not use it)."""
        _orphans.append(self._conn)
        self._conn = None


#: Connections inherited through fork: kept referenced so they are never finalised in the child.
_orphans: list[sqlite3.Connection | None] = []
