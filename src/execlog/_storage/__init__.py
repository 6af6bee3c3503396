"""Storage: the one small interface every backend implements, and the factory that picks one.

Nothing outside this package knows which backend it is talking to. A row is a tuple in
:data:`COLUMNS` order; ``inputs``/``output``/``tags`` are JSON (bytes when written, str when
read), times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "COLUMNS",
    "EVENT",
    "EVENT_COLUMNS",
    "HISTOGRAM_BOUNDS_MS",
    "NULL",
    "Backend",
    "IdColumn",
    "LineageRows",
    "ListQuery",
    "Row",
    "RunRow",
    "RunsQuery",
    "StatsRow",
    "display_db",
    "is_http",
    "is_postgres",
    "local_path",
    "open_backend",
    "shareable_location",
    "split_password",
]

COLUMNS = (
    "execution_id",
    "name",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "inputs",
    "output",
    "error_type",
    "error_message",
    "error_stack",
    "parent_execution_id",
    "correlation_id",
    "trigger_kind",
    "run_id",
    "tags",
    "pid",
    "thread_id",
    "host",
)

Row = tuple[Any, ...]

#: The columns of an event row (``execution_events``); ``attributes`` is JSON, ``at`` integer
#: microseconds since the epoch like every stored time.
EVENT_COLUMNS = ("execution_id", "at", "level", "message", "attributes", "logger")


class _EventMark:
    """The first item of an event record in the writer's queue (``EVENT, *event row``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "EVENT"


#: Marks an event record in the queue, where it travels with the execution rows: a record
#: whose first item is this object is ``(EVENT, *values in EVENT_COLUMNS order)``.
EVENT: Any = _EventMark()

#: NULL in a row, where a producer wants it cheap: a float NaN, which SQLite stores as NULL
#: (a bound NaN is always NULL there, whoever binds it). Python's sqlite3 binds a float
#: directly but sends None through its adapter protocol (a registry miss, then attribute
#: look-ups: about 3,000 instructions each, with the GIL held), and a record has about six
#: NULL columns; the C hot path uses this. Rows may hold None as well.
NULL = float("nan")

#: The columns whose values can be looked up by prefix.
IdColumn = Literal["execution_id", "correlation_id"]

#: One line of ``Store.stats``: name, count, errors, p50, p95 and max duration (ms).
StatsRow = tuple[str, int, int, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters of ``Store.list``; times in microseconds since the epoch."""

    name: str | None = None
    status: str | None = None
    correlation_id: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """Filters of ``Store.runs`` (root executions); times in microseconds since the epoch."""

    name: str | None = None
    status: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    search: str | None = None
    limit: int = 50
    offset: int = 0


#: One run: the root's row, how many executions its correlation holds, how many of them
#: failed (status ``error``) and how many are still ``running``.
RunRow = tuple[Row, int, int, int]

#: Upper bounds (exclusive, ms) of the duration histogram's buckets; one more bucket holds
#: everything at or above the last bound.
HISTOGRAM_BOUNDS_MS = (1.0, 10.0, 100.0, 1_000.0, 10_000.0, 60_000.0, 600_000.0)


@dataclass(frozen=True, slots=True)
class LineageRows:
    """Rows of ``Store.lineage``, read from one snapshot of the database."""

    execution: Row
    ancestors: list[Row]
    descendants: list[Row]
    siblings: list[Row]


class Backend(Protocol):
    """What the writer and the store need from a database."""

    def write(
        self,
        rows: Sequence[Row],
        running: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> int:
        """Commit finished rows (upsert), new ``running`` rows and a drop count, atomically.

        ``events`` (rows in :data:`EVENT_COLUMNS` order, appended) go in the same transaction;
        the writer passes them only when the batch has some.
        """

    def events(self, execution_id: str) -> list[Row]:
        """Event rows of one execution, oldest first (time, then the order they were written)."""

    def upsert(
        self, rows: Sequence[Row], running: Sequence[Row], events: Sequence[Row] = ()
    ) -> int:
        """Like :meth:`write` without a drop count; return the execution rows stored.

        Finished rows replace what is stored; a ``running`` row is only inserted when the
        execution is not stored yet, so it never replaces a finished one. ``events`` are
        added in the same transaction.
        """

    def replaced(self) -> bool:
        """Whether the database was deleted or replaced since it was opened."""

    def abandon_dead(self) -> int:
        """Mark ``running`` rows of dead processes on this host ``abandoned``; return how many."""

    def get(self, execution_id: str) -> Row | None:
        """The row of one execution, or None."""

    def list_rows(self, query: ListQuery) -> list[Row]:
        """Rows matching ``query``, newest first."""

    def children(self, execution_id: str) -> list[Row]:
        """Direct children, by start time."""

    def correlation(self, correlation_id: str) -> list[Row]:
        """Every execution of one correlation, by start time."""

    def root(self, correlation_id: str) -> Row | None:
        """The root execution of a correlation."""

    def lineage(self, execution_id: str, depth: int) -> LineageRows | None:
        """Ancestors (root first), descendants (breadth first) and siblings, or None if unknown.

        Walks at most ``depth`` levels up and down, and terminates on cyclic parent links.
        """

    def stats(self, name: str | None, since_us: int | None) -> list[StatsRow]:
        """Per name (sorted): finished executions, errors, p50/p95/max duration."""

    def runs(self, query: RunsQuery) -> list[RunRow]:
        """Root executions (no parent) matching ``query``, newest first, with their tree counts."""

    def histogram(self, name: str | None, since_us: int | None) -> list[tuple[str, int, int]]:
        """Finished executions per (name, bucket index of HISTOGRAM_BOUNDS_MS, count)."""

    def delete(self, execution_id: str) -> int:
        """Remove an execution and all its descendants atomically; return how many rows went."""

    def prune(self, before_us: int, *, dry_run: bool = False) -> int:
        """Remove whole correlation trees whose root started before ``before_us``; return count."""

    def dropped_total(self) -> int:
        """How many records writers reported as dropped."""

    def ids_from(self, column: IdColumn, start: str, limit: int) -> list[str]:
        """Distinct values of ``column`` from ``start`` on (byte order), sorted, at most ``limit``.

        The values starting with a prefix come first, together: this is id-prefix lookup.
        """

    def id_neighbours(self, execution_id: str) -> tuple[str | None, str | None]:
        """The execution ids just before and just after ``execution_id`` in byte order."""

    def close(self) -> None:
        """Release the connection (safe to call twice)."""


#: ``password=`` in a libpq URL's query string or a ``key=value`` connection string.
_PASSWORD_PARAMETER = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]*)")


def display_db(db: str) -> str:
    """``db`` as it may be shown in a message, a log line or a repr: passwords masked."""
    from execlog._redaction import URL_MASK, mask_urls  # noqa: PLC0415 - rare path

    return _PASSWORD_PARAMETER.sub(lambda m: m.group("head") + URL_MASK, mask_urls(db))


_URL_USER_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]*):(?P<password>[^\s/]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<sep>[?&])password=(?P<password>[^&]*)&?")


def split_password(db: str) -> tuple[str, str | None]:
    """``db`` without the password of a PostgreSQL URL, and that password (or None).

    What a child process is given: the URL in ``EXECLOG_DB``, the password in libpq's
    ``PGPASSWORD``, so that no URL passed around holds a credential.
    """
    if not is_postgres(db):
        return db, None
    password = None
    found = _URL_USER_PASSWORD.match(db)
    if found is not None:
        password = urllib.parse.unquote(found.group("password"))
        db = found.group("head") + "@" + db[found.end() :]
    query = _QUERY_PASSWORD.search(db)
    if query is not None:
        password = urllib.parse.unquote(query.group("password"))
        db = (db[: query.start()] + query.group("sep") + db[query.end() :]).rstrip("?&")
    return db, password


def is_postgres(db: str) -> bool:
    """Whether the ``db`` setting names a PostgreSQL database (``postgresql://``, ``postgres://``)."""
    return db[:13].lower().startswith(("postgresql://", "postgres://"))


def is_http(db: str) -> bool:
    """Whether ``db`` names a collector (``http://`` or ``https://``) rather than a database."""
    return db[:8].lower().startswith(("http://", "https://"))


def open_backend(db: str, token: str | None = None) -> Backend:
    """Open the backend for the ``db`` setting.

    A path, ``sqlite:///path`` or ``:memory:`` opens SQLite; ``http://`` or ``https://`` a
    collector (``execlog serve``), authenticated with ``token`` (default ``EXECLOG_TOKEN``);
    ``postgresql://`` (or ``postgres://``) PostgreSQL through psycopg (extra
    ``execlog[postgres]``).
    """
    if is_http(db):
        from execlog._storage.http import HTTPBackend  # noqa: PLC0415 - one backend per URL

        return HTTPBackend(db, token)
    if is_postgres(db):
        try:
            from execlog._storage.postgres import PostgresBackend  # noqa: PLC0415 - extra
        except ImportError as exc:
            from execlog.exceptions import StoreError  # noqa: PLC0415 - rare path

            msg = (
                f"{display_db(db)}: PostgreSQL needs the psycopg driver "
                f"(pip install 'execlog[postgres]'): {exc}"
            )
            raise StoreError(msg) from None
        return PostgresBackend(db)
    from execlog._storage.sqlite import SQLiteBackend  # noqa: PLC0415 - one backend per URL

    return SQLiteBackend(db)


_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@]*)@")
_SECRET_PARAMS = frozenset({"password", "passwd", "token", "sslpassword"})


def shareable_location(db: str) -> str | None:
    """The ``db`` setting as another process can use it, or None when it cannot be shared.

    A path (also ``sqlite:///path``) becomes an absolute path, resolved against the current
    directory, so that a child started elsewhere finds the same file. A URL keeps its user
    name but loses its password, in the user part or the query (a child gets credentials the
    way its parent did). ``:memory:`` (and a ``file:`` URI of an in-memory database) belongs to
    this process alone: None.
    """
    if db == ":memory:" or (db.startswith("file:") and "mode=memory" in db):
        return None
    if db.startswith("file:"):
        return db
    db = db.removeprefix("sqlite:///")  # sqlite:////absolute, sqlite:///relative
    if "://" not in db:
        return os.path.abspath(os.path.expanduser(db))
    db = _USERINFO.sub(_without_password, db)
    base, _, query = db.partition("?")
    if not query:
        return base
    kept = [p for p in query.split("&") if p.split("=", 1)[0].lower() not in _SECRET_PARAMS]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _without_password(match: re.Match[str]) -> str:
    """``scheme://user:password@`` as ``scheme://user@`` (``scheme://`` without a user)."""
    user = match[2].split(":", 1)[0]
    return match[1] + (f"{user}@" if user else "")


def local_path(db: str) -> str | None:
    """The file a ``db`` setting names, or None when it is not a local file path."""
    if db == ":memory:" or db.startswith("file:"):
        return None
    db = db.removeprefix("sqlite:///")
    if "://" in db:
        return None
    return os.path.expanduser(db)
