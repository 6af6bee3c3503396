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
    "EVENT",
    "EVENT_COLUMNS",
    "NULL",
    "Backend",
    "LineageRows",
    "ListQuery",
    "Row",
    "StatsRow",
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

    def delete(self, execution_id: str) -> int:
        """Remove an execution and all its descendants atomically; return how many rows went."""

    def prune(self, before_us: int, *, dry_run: bool = False) -> int:
        """Remove whole correlation trees whose root started before ``before_us``; return count."""

    def dropped_total(self) -> int:
        """How many records writers reported as dropped."""

    def close(self) -> None:
        """Release the connection (safe to call twice)."""


def open_backend(db: str) -> Backend:
    """Open the backend for the ``db`` setting (a path, ``sqlite:///path`` or ``:memory:``)."""
    from execlog._storage.sqlite import SQLiteBackend  # noqa: PLC0415 - one backend per URL

    return SQLiteBackend(db)
