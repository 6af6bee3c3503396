"""The SQLite backend: WAL, busy timeout, one transaction per batch, parameterised SQL only.

The writer thread owns the only write connection (``BEGIN IMMEDIATE``); every reader opens its
own. A file is checked before anything is written to it: a file that is not SQLite, a database
of another application, or one with a newer schema raises and is left byte-for-byte unchanged.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from execlog._storage import COLUMNS, Row
from execlog._storage.migrations import applied_version, check_not_newer, migrate
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from execlog._storage import ListQuery

__all__ = ["SQLiteBackend", "pid_alive", "resolve"]

#: How long one statement waits for another connection's lock before the writer retries.
BUSY_TIMEOUT_S = 1.0
HOST = socket.gethostname() or "localhost"

_JSON_COLUMNS = frozenset({"inputs", "output", "tags"})
_MUTABLE = [c for c in COLUMNS if c != "execution_id"]
_PLACEHOLDERS = ", ".join("CAST(? AS TEXT)" if c in _JSON_COLUMNS else "?" for c in COLUMNS)
_COLUMN_LIST = ", ".join(COLUMNS)
UPSERT = (
    f"INSERT INTO executions ({_COLUMN_LIST}) VALUES ({_PLACEHOLDERS}) "  # noqa: S608 - constant
    "ON CONFLICT (execution_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _MUTABLE)
)
INSERT_RUNNING = (
    f"INSERT INTO executions ({_COLUMN_LIST}) VALUES ({_PLACEHOLDERS}) "  # noqa: S608 - constant
    "ON CONFLICT (execution_id) DO NOTHING"
)
_SELECT = f"SELECT {_COLUMN_LIST} FROM executions"  # noqa: S608 - constant

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


def _create_private(path: str) -> None:
    """Create an empty database file readable by its owner only (0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteBackend:
    """One connection to an execlog SQLite database."""

    def __init__(self, db: str, *, role: str = "writer") -> None:
        """Open (creating and migrating when needed) the database named by ``db``.

        Raises:
            StoreError: not a SQLite database, another application's, corrupt or unreachable.
            SchemaError: the schema is newer than this library.
        """
        self.target, self.is_uri, self.where = resolve(db)
        self.role = role
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if not self.is_uri and role != "reader-existing":
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------

    def write(self, rows: Sequence[Row], running: Sequence[Row], dropped: int) -> None:
        """Commit one batch in one transaction."""
        with self.atomic() as conn:
            if running:
                conn.executemany(INSERT_RUNNING, running)
            if rows:
                conn.executemany(UPSERT, rows)
            if dropped:
                conn.execute(
                    "INSERT INTO dropped_records (recorded_at, host, pid, count) "
                    "VALUES (?, ?, ?, ?)",
                    (time.time_ns() // 1000, HOST, os.getpid(), dropped),
                )

    def abandon_dead(self) -> int:
        """Mark ``running`` rows of processes of this host that no longer exist ``abandoned``."""
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

    def get(self, execution_id: str) -> Row | None:
        """The row of ``execution_id``, or None."""
        with self._lock:
            row = self.conn.execute(f"{_SELECT} WHERE execution_id = ?", (execution_id,)).fetchone()
        return None if row is None else tuple(row)

    def list_rows(self, query: ListQuery) -> list[Row]:
        """Rows matching ``query``: newest first (``started_at``, then id)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("name", query.name),
            ("status", query.status),
            ("correlation_id", query.correlation_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
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
        with self._lock:
            return [tuple(r) for r in self.conn.execute(sql, params)]

    def children(self, execution_id: str) -> list[Row]:
        """Direct children of ``execution_id``, by start time."""
        with self._lock:
            cur = self.conn.execute(
                f"{_SELECT} WHERE parent_execution_id = ? ORDER BY started_at, execution_id",
                (execution_id,),
            )
            return [tuple(r) for r in cur]

    def correlation(self, correlation_id: str) -> list[Row]:
        """Every execution of one correlation, by start time."""
        with self._lock:
            cur = self.conn.execute(
                f"{_SELECT} WHERE correlation_id = ? ORDER BY started_at, execution_id",
                (correlation_id,),
            )
            return [tuple(r) for r in cur]

    def root(self, correlation_id: str) -> Row | None:
        """The execution of a correlation that has no parent inside it (the earliest such)."""
        with self._lock:
            row = self.conn.execute(
                f"{_SELECT} WHERE correlation_id = ? AND (parent_execution_id IS NULL "  # noqa: S608
                "OR parent_execution_id NOT IN "
                "(SELECT execution_id FROM executions WHERE correlation_id = ?)) "
                "ORDER BY started_at, execution_id LIMIT 1",
                (correlation_id, correlation_id),
            ).fetchone()
        return None if row is None else tuple(row)

    def dropped_total(self) -> int:
        """Sum of the drop counts writers persisted."""
        with self._lock:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(count), 0) FROM dropped_records"
            ).fetchone()
        return int(row[0])

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
