"""Reading the history: ``open_store``, :class:`Store`, :class:`Execution`, :class:`Lineage`."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from execlog._config import DEFAULT_DB
from execlog._storage import COLUMNS, ListQuery, Row, open_backend

if TYPE_CHECKING:
    import builtins
    from types import TracebackType

    from execlog._storage import Backend

__all__ = ["Execution", "Lineage", "Store", "open_store"]

_UTC = dt.timezone.utc


def _time(us: int | None) -> dt.datetime | None:
    if us is None:
        return None
    return dt.datetime.fromtimestamp(us / 1_000_000, tz=_UTC)


def _us(value: dt.datetime | None, option: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        msg = f"{option} must be a datetime, got {value!r}"
        raise TypeError(msg)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return int(value.timestamp() * 1_000_000)


def _json(text: str | bytes | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


@dataclass(frozen=True, slots=True)
class Execution:
    """One recorded execution, as stored (immutable).

    Example::

        ex = execlog.open_store("runs.db").get(execution_id)
        ex.status, ex.duration_ms, ex.inputs

    .. versionadded:: 0.1.0
    """

    execution_id: str
    name: str
    kind: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_ms: float | None
    inputs: Any
    output: Any
    error_type: str | None
    error_message: str | None
    error_stack: str | None
    parent_execution_id: str | None
    correlation_id: str
    trigger_kind: str
    run_id: str | None
    tags: dict[str, Any] = field(default_factory=dict)
    pid: int = 0
    thread_id: int = 0
    host: str = ""

    @classmethod
    def from_row(cls, row: Row) -> Execution:
        """Build from a storage row (:data:`execlog._storage.COLUMNS` order)."""
        values = dict(zip(COLUMNS, row))
        values["started_at"] = _time(values["started_at"])
        values["ended_at"] = _time(values["ended_at"])
        values["inputs"] = _json(values["inputs"])
        values["output"] = _json(values["output"])
        values["tags"] = _json(values["tags"]) or {}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: times as ISO 8601 strings, JSON fields decoded.

        Example::

            json.dumps(ex.to_dict())
        """
        data = {name: getattr(self, name) for name in COLUMNS}
        for key in ("started_at", "ended_at"):
            value = data[key]
            data[key] = None if value is None else value.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Lineage:
    """An execution with its ancestors (root first), descendants (BFS) and siblings.

    .. versionadded:: 0.1.0
    """

    execution: Execution
    ancestors: list[Execution] = field(default_factory=list)
    descendants: list[Execution] = field(default_factory=list)
    siblings: list[Execution] = field(default_factory=list)


class Store:
    """Query API over one execlog database. Readers never block the writer (WAL).

    Example::

        with execlog.open_store("runs.db") as store:
            for ex in store.recent(10):
                print(ex.name, ex.status, ex.duration_ms)

    .. versionadded:: 0.1.0
    """

    def __init__(self, backend: Backend) -> None:
        """Wrap an open backend (use :func:`open_store`)."""
        self._backend = backend

    def get(self, execution_id: str) -> Execution | None:
        """The execution with this id, or None."""
        row = self._backend.get(execution_id)
        return None if row is None else Execution.from_row(row)

    def recent(self, limit: int = 20) -> list[Execution]:
        """The newest ``limit`` executions, newest first."""
        return self.list(limit=limit)

    def list(
        self,
        name: str | None = None,
        status: str | None = None,
        correlation_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[Execution]:
        """Executions matching every given filter, newest first (``started_at``, then id).

        Args:
            name: Exact name.
            status: One status value.
            correlation_id: One correlation tree.
            since: Started at or after (inclusive).
            until: Started before (exclusive).
            limit: At most this many.
            offset: Skip this many first.
        """
        if type(limit) is not int or limit < 0:
            msg = f"limit must be a non-negative int, got {limit!r}"
            raise ValueError(msg)
        if type(offset) is not int or offset < 0:
            msg = f"offset must be a non-negative int, got {offset!r}"
            raise ValueError(msg)
        query = ListQuery(
            name, status, correlation_id, _us(since, "since"), _us(until, "until"), limit, offset
        )
        return [Execution.from_row(r) for r in self._backend.list_rows(query)]

    def children(self, execution_id: str) -> builtins.list[Execution]:
        """Direct children of an execution, by start time."""
        return [Execution.from_row(r) for r in self._backend.children(execution_id)]

    def correlation_chain(self, correlation_id: str) -> builtins.list[Execution]:
        """Every execution sharing ``correlation_id``, ordered by ``started_at``."""
        return [Execution.from_row(r) for r in self._backend.correlation(correlation_id)]

    def root(self, correlation_id: str) -> Execution | None:
        """The root execution of a correlation, or None."""
        row = self._backend.root(correlation_id)
        return None if row is None else Execution.from_row(row)

    def dropped_count(self) -> int:
        """How many records writers had to drop (``on_full="drop"`` or an unwritable database)."""
        return self._backend.dropped_total()

    def close(self) -> None:
        """Close the connection."""
        self._backend.close()

    def __enter__(self) -> Store:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()


def open_store(db: str | os.PathLike[str] | None = None) -> Store:
    """Open an execlog database for querying (created and migrated if needed).

    Example::

        store = execlog.open_store("runs.db")
        store.recent(5)

    Running rows left by processes of this host that no longer exist are marked
    ``abandoned`` on open.

    Args:
        db: A path, ``sqlite:///path`` or ``:memory:``; default ``EXECLOG_DB`` or
            ``./execlog.db``.

    Returns:
        A :class:`Store`.

    Raises:
        StoreError: not an execlog database, corrupt, or cannot be opened.
        SchemaError: the schema is newer than this library.

    .. versionadded:: 0.1.0
    """
    target = os.fspath(db) if db is not None else (os.environ.get("EXECLOG_DB") or DEFAULT_DB)
    backend = open_backend(target, role="reader")
    try:
        backend.abandon_dead()
    except Exception:  # noqa: S110 - a read-only database can still be queried
        pass
    return Store(backend)
