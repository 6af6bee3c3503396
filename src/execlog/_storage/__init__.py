"""Storage: the one small interface every backend implements, and the factory that picks one.

Nothing outside this package knows which backend it is talking to. A row is a tuple in
:data:`COLUMNS` order; ``inputs``/``output``/``tags`` are JSON (bytes when written, str when
read), times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "COLUMNS",
    "HISTOGRAM_BOUNDS_MS",
    "NULL",
    "Backend",
    "LineageRows",
    "ListQuery",
    "Row",
    "RunRow",
    "RunsQuery",
    "StatsRow",
    "is_http",
    "open_backend",
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

#: NULL in a row, where a producer wants it cheap: a float NaN, which SQLite stores as NULL
#: (a bound NaN is always NULL there, whoever binds it). Python's sqlite3 binds a float
#: directly but sends None through its adapter protocol (a registry miss, then attribute
#: look-ups: about 3,000 instructions each, with the GIL held), and a record has about six
#: NULL columns; the C hot path uses this. Rows may hold None as well.
NULL = float("nan")

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

    def write(self, rows: Sequence[Row], running: Sequence[Row], dropped: int) -> int:
        """Commit finished rows (upsert), new ``running`` rows and a drop count, atomically."""

    def upsert(self, rows: Sequence[Row], running: Sequence[Row]) -> int:
        """Like :meth:`write` without a drop count; return how many rows were inserted or changed.

        Finished rows replace what is stored; a ``running`` row is only inserted when the
        execution is not stored yet, so it never replaces a finished one.
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

    def close(self) -> None:
        """Release the connection (safe to call twice)."""


def is_http(db: str) -> bool:
    """Whether ``db`` names a collector (``http://`` or ``https://``) rather than a database."""
    return db[:8].lower().startswith(("http://", "https://"))


def open_backend(db: str, token: str | None = None) -> Backend:
    """Open the backend for the ``db`` setting.

    A path, ``sqlite:///path`` or ``:memory:`` opens SQLite; ``http://`` or ``https://`` a
    collector (``execlog serve``), authenticated with ``token`` (default ``EXECLOG_TOKEN``).
    """
    if is_http(db):
        from execlog._storage.http import HTTPBackend  # noqa: PLC0415 - one backend per URL

        return HTTPBackend(db, token)
    from execlog._storage.sqlite import SQLiteBackend  # noqa: PLC0415 - one backend per URL

    return SQLiteBackend(db)
