"""Reading the history: ``open_store``, :class:`Store`, and its results.

:class:`Execution`, :class:`Lineage` and :class:`Stats` are frozen dataclasses.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import orjson

from execlog._config import DEFAULT_DB
from execlog._storage import (
    COLUMNS,
    EVENT_COLUMNS,
    HISTOGRAM_BOUNDS_MS,
    ListQuery,
    Row,
    RunsQuery,
    local_path,
    open_backend,
)
from execlog.exceptions import AmbiguousIdError, StoreError, StoreNotFoundError

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterable
    from types import TracebackType

    from execlog._storage import Backend, IdColumn

__all__ = [
    "HISTOGRAM_BOUNDS_MS",
    "Event",
    "Execution",
    "Lineage",
    "Run",
    "Stats",
    "Store",
    "open_store",
]

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_MIN_US = -(2**63)
_THIRTY_DAYS = dt.timedelta(days=30)


def _time(us: int | None) -> dt.datetime | None:
    """Microseconds since the epoch as an aware UTC datetime (exact: no float on the way)."""
    if us is None:
        return None
    return _EPOCH + dt.timedelta(microseconds=us)


def _us(value: dt.datetime | None, option: str) -> int | None:
    """An aware (or naive, taken as UTC) datetime as exact microseconds since the epoch."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        msg = f"{option} must be a datetime, got {value!r}"
        raise TypeError(msg)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return (value - _EPOCH) // _MICROSECOND


def _text(value: str | None, option: str) -> str | None:
    if value is not None and not isinstance(value, str):
        msg = f"{option} must be a str, got {value!r}"
        raise TypeError(msg)
    return value


def _id(value: str, option: str) -> str:
    if not isinstance(value, str):
        msg = f"{option} must be a str, got {value!r}"
        raise TypeError(msg)
    return value


#: The largest integer SQLite stores (and binds): limits, offsets and depths stay within it.
_MAX_INT = 2**63 - 1


def _count(value: int, option: str) -> int:
    if type(value) is not int:
        msg = f"{option} must be an int, got {value!r}"
        raise TypeError(msg)
    if value < 0:
        msg = f"{option} must not be negative, got {value!r}"
        raise ValueError(msg)
    if value > _MAX_INT:
        msg = f"{option} must be at most 2**63 - 1, got {value!r}"
        raise ValueError(msg)
    return value


def _common(text: str, other: str | None) -> int:
    """How many leading characters ``text`` and ``other`` share."""
    if other is None:
        return 0
    for i, (a, b) in enumerate(zip(text, other)):
        if a != b:
            return i
    return min(len(text), len(other))


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
        """Build from a storage row (:data:`execlog._storage.COLUMNS` order).

        Positional: the fields are declared in ``COLUMNS`` order (checked below), and a
        lineage of thousands of rows builds them a quarter faster than through a dict.
        """
        return cls(
            row[0],  # execution_id
            row[1],  # name
            row[2],  # kind
            row[3],  # status
            _EPOCH + dt.timedelta(microseconds=row[4]),
            _time(row[5]),
            row[6],  # duration_ms
            _json(row[7]),
            _json(row[8]),
            row[9],  # error_type
            row[10],  # error_message
            row[11],  # error_stack
            row[12],  # parent_execution_id
            row[13],  # correlation_id
            row[14],  # trigger_kind
            row[15],  # run_id
            _json(row[16]) or {},
            row[17],  # pid
            row[18],  # thread_id
            row[19],  # host
        )

    def to_row(self) -> Row:
        """The storage row (:data:`execlog._storage.COLUMNS` order) of this execution."""
        values = [getattr(self, name) for name in COLUMNS]
        for key in ("started_at", "ended_at"):
            index = COLUMNS.index(key)
            values[index] = _us(values[index], key)
        for key in ("inputs", "output", "tags"):
            index = COLUMNS.index(key)
            value = values[index]
            values[index] = None if value is None else orjson.dumps(value)
        return tuple(values)

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


assert tuple(f.name for f in fields(Execution)) == COLUMNS, "Execution.from_row needs them in order"


@dataclass(frozen=True, slots=True)
class Event:
    """One event recorded on an execution (``execlog.event`` or a log record), immutable.

    Example::

        for ev in store.events(ex.execution_id):
            print(ev.at, ev.level, ev.message, ev.attributes)

    Attributes:
        execution_id: The execution it was recorded on.
        at: When, as a timezone-aware UTC ``datetime``.
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
        message: What happened.
        attributes: The event's data (decoded JSON; ``{}`` when it had none).
        logger: The logger's name for a log record, else None.

    .. versionadded:: 0.2.0
    """

    execution_id: str
    at: dt.datetime
    level: str
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)
    logger: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> Event:
        """Build from a storage row (:data:`execlog._storage.EVENT_COLUMNS` order)."""
        execution_id, at, level, message, attributes, logger = row
        return cls(
            execution_id=execution_id,
            at=_EPOCH + dt.timedelta(microseconds=at),
            level=level,
            message=message,
            attributes=_json(attributes) or {},
            logger=logger,
        )

    def to_row(self) -> Row:
        """The storage row (:data:`execlog._storage.EVENT_COLUMNS` order), as written."""
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=dt.timezone.utc)
        delta = at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        attributes = orjson.dumps(self.attributes).decode() if self.attributes else None
        return (self.execution_id, micros, self.level, self.message, attributes, self.logger)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the fields, ``at`` as an ISO 8601 string."""
        data = {name: getattr(self, name) for name in EVENT_COLUMNS}
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Lineage:
    """An execution with its ancestors, descendants and siblings (immutable).

    Example::

        lin = store.lineage(execution_id)
        " > ".join(a.name for a in lin.ancestors)       # root first
        [d.name for d in lin.descendants]               # breadth first

    Attributes:
        execution: The execution asked about.
        ancestors: Its parent chain, the root first and its parent last.
        descendants: Everything below it, level by level (breadth first), each level by start
            time.
        siblings: Executions with the same parent, by start time, itself left out. For a root
            (no parent): the other roots of its correlation.

    .. versionadded:: 0.1.0
    """

    execution: Execution
    ancestors: tuple[Execution, ...] = ()
    descendants: tuple[Execution, ...] = ()
    siblings: tuple[Execution, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``{"execution": {...}, "ancestors": [...], ...}``.

        Example::

            json.dumps(store.lineage(execution_id).to_dict())
        """
        return {
            "execution": self.execution.to_dict(),
            "ancestors": [e.to_dict() for e in self.ancestors],
            "descendants": [e.to_dict() for e in self.descendants],
            "siblings": [e.to_dict() for e in self.siblings],
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """Outcomes and durations of the finished executions of one name (immutable).

    Example::

        for s in store.stats(since=datetime.now(UTC) - timedelta(days=1)):
            print(s.name, s.count, f"{s.error_rate:.1%}", s.p50_ms, s.p95_ms, s.max_ms)

    Attributes:
        name: The execution name.
        count: Finished executions (every status but ``running``).
        errors: Those whose status is ``error``.
        error_rate: ``errors / count``.
        p50_ms: Median duration (nearest rank), None when no execution has a duration.
        p95_ms: 95th percentile duration (nearest rank: the smallest duration that at least
            95% of durations do not exceed).
        max_ms: Longest duration.

    .. versionadded:: 0.1.0
    """

    name: str
    count: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the fields, in order)."""
        return {
            "name": self.name,
            "count": self.count,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "max_ms": self.max_ms,
        }


@dataclass(frozen=True, slots=True)
class Run:
    """One run: a root execution (no parent) and the size of its correlation tree (immutable).

    Example::

        for run in store.runs(limit=10):
            print(run.root.name, run.root.status, run.executions, run.errors)

    Attributes:
        root: The root execution.
        executions: How many executions share its correlation (itself included).
        errors: How many of them have status ``error``.
        running: How many of them are still ``running``.

    .. versionadded:: 0.1.0
    """

    root: Execution
    executions: int
    errors: int
    running: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the root's fields plus ``executions``, ``errors``, ``running``."""
        return {
            **self.root.to_dict(),
            "executions": self.executions,
            "errors": self.errors,
            "running": self.running,
        }


class Store:
    """Query API over one execlog database. Readers never block the writer (WAL).

    Example::

        with execlog.open_store("runs.db") as store:
            for ex in store.recent(10):
                print(ex.name, ex.status, ex.duration_ms)

    Every method reads through the store's own connection; :meth:`delete` and :meth:`prune`
    write through it too, each in one transaction, waiting while a writer commits a batch.

    .. versionadded:: 0.1.0
    """

    def __init__(self, backend: Backend) -> None:
        """Wrap an open backend (use :func:`open_store`)."""
        self._backend = backend

    def get(self, execution_id: str) -> Execution | None:
        """The execution with this id, or None.

        Example::

            ex = store.get(execution_id)

        .. versionadded:: 0.1.0
        """
        row = self._backend.get(_id(execution_id, "execution_id"))
        return None if row is None else Execution.from_row(row)

    def recent(self, limit: int = 20) -> builtins.list[Execution]:
        """The newest ``limit`` executions, newest first.

        Example::

            store.recent(5)

        .. versionadded:: 0.1.0
        """
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

        Example::

            store.list(name="load", status="error", since=datetime(2026, 11, 1, tzinfo=UTC))

        The order is total (ties on ``started_at`` are broken by id, descending), so pages
        taken with ``limit``/``offset`` neither overlap nor skip while nothing is added.

        Args:
            name: Exact name.
            status: One status value.
            correlation_id: One correlation tree.
            since: Started at or after (inclusive). A naive datetime is taken as UTC.
            until: Started before (exclusive).
            limit: At most this many.
            offset: Skip this many first.

        Raises:
            TypeError: A filter of the wrong type.
            ValueError: A negative ``limit`` or ``offset``, or one above ``2**63 - 1``.

        .. versionadded:: 0.1.0
        """
        query = ListQuery(
            _text(name, "name"),
            _text(status, "status"),
            _text(correlation_id, "correlation_id"),
            _us(since, "since"),
            _us(until, "until"),
            _count(limit, "limit"),
            _count(offset, "offset"),
        )
        return [Execution.from_row(r) for r in self._backend.list_rows(query)]

    def runs(
        self,
        name: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[Run]:
        """Root executions (no parent), newest first, each with the counts of its tree.

        Example::

            store.runs(status="error", since=datetime.now(UTC) - timedelta(days=1))

        Args:
            name: The root's exact name.
            status: The root's status.
            since: Started at or after (inclusive).
            until: Started before (exclusive).
            search: Text found (case-insensitively for ASCII) in the name or error message of
                any execution of the run.
            limit: At most this many.
            offset: Skip this many first.

        Raises:
            TypeError: A filter of the wrong type.
            ValueError: A negative ``limit`` or ``offset``.

        .. versionadded:: 0.1.0
        """
        query = RunsQuery(
            _text(name, "name"),
            _text(status, "status"),
            _us(since, "since"),
            _us(until, "until"),
            _text(search, "search") or None,
            _count(limit, "limit"),
            _count(offset, "offset"),
        )
        return [
            Run(Execution.from_row(row), total, errors, running)
            for row, total, errors, running in self._backend.runs(query)
        ]

    def children(self, execution_id: str) -> builtins.list[Execution]:
        """Direct children of an execution, by start time (empty for an unknown id).

        Example::

            [c.name for c in store.children(ex.execution_id)]

        .. versionadded:: 0.1.0
        """
        rows = self._backend.children(_id(execution_id, "execution_id"))
        return [Execution.from_row(r) for r in rows]

    def lineage(self, execution_id: str, depth: int = 20) -> Lineage:
        """An execution with its ancestors, descendants and siblings, read consistently.

        Example::

            lin = store.lineage(ex.execution_id, depth=3)
            lin.ancestors[0] if lin.ancestors else lin.execution   # the root (within 3 levels)

        Parent links are followed whatever the correlation (an explicit ``parent=`` may point
        into another tree). A parent chain that loops (hand-edited data) is walked once: no
        execution appears twice in a list, and the execution itself never appears in them.

        Args:
            execution_id: The execution.
            depth: How many levels to walk up (ancestors) and down (descendants); 0 gives
                neither. Siblings are always included.

        Returns:
            A :class:`Lineage`.

        Raises:
            KeyError: No execution has this id (like ``mapping[key]``; :meth:`get` is the
                lookup that returns None).
            TypeError: ``depth`` is not an int.
            ValueError: ``depth`` is negative or above ``2**63 - 1``.

        .. versionadded:: 0.1.0
        """
        rows = self._backend.lineage(_id(execution_id, "execution_id"), _count(depth, "depth"))
        if rows is None:
            raise KeyError(execution_id)
        return Lineage(
            Execution.from_row(rows.execution),
            tuple(Execution.from_row(r) for r in rows.ancestors),
            tuple(Execution.from_row(r) for r in rows.descendants),
            tuple(Execution.from_row(r) for r in rows.siblings),
        )

    def correlation_chain(self, correlation_id: str) -> builtins.list[Execution]:
        """Every execution sharing ``correlation_id``, ordered by ``started_at`` (then id).

        Example::

            for ex in store.correlation_chain(root.correlation_id):
                print(ex.started_at, ex.name, ex.status)

        .. versionadded:: 0.1.0
        """
        rows = self._backend.correlation(_id(correlation_id, "correlation_id"))
        return [Execution.from_row(r) for r in rows]

    def root(self, correlation_id: str) -> Execution | None:
        """The root execution of a correlation, or None.

        Example::

            store.root(ex.correlation_id).name

        The root is the execution of the correlation whose parent is not part of it (none, or
        one recorded elsewhere); when there are several, the earliest.

        .. versionadded:: 0.1.0
        """
        row = self._backend.root(_id(correlation_id, "correlation_id"))
        return None if row is None else Execution.from_row(row)

    def stats(
        self, name: str | None = None, since: dt.datetime | None = None
    ) -> builtins.list[Stats]:
        """Count, errors and duration percentiles per name, computed by SQLite.

        Example::

            for s in store.stats(since=datetime.now(UTC) - timedelta(hours=1)):
                print(s.name, s.count, s.error_rate, s.p95_ms)

        ``running`` executions are not counted (they have neither an outcome nor a duration);
        every other status is, and ``errors`` counts status ``error``. Percentiles are
        nearest-rank over the executions that have a duration.

        Args:
            name: Only this name (exact).
            since: Only executions started at or after this instant.

        Returns:
            One :class:`Stats` per name, sorted by name.

        .. versionadded:: 0.1.0
        """
        rows = self._backend.stats(_text(name, "name"), _us(since, "since"))
        return [
            Stats(n, count, errors, errors / count, p50, p95, high)
            for n, count, errors, p50, p95, high in rows
        ]

    def events(self, execution_id: str) -> builtins.list[Event]:
        """The events recorded on one execution, oldest first.

        Example::

            for ev in store.events(ex.execution_id):
                print(ev.level, ev.message)

        Args:
            execution_id: The execution.

        Returns:
            Its events (``execlog.event`` calls and log records), by time, then in the order
            they were recorded; empty for an unknown id.

        .. versionadded:: 0.2.0
        """
        rows = self._backend.events(_id(execution_id, "execution_id"))
        return [Event.from_row(r) for r in rows]

    def histogram(
        self, name: str | None = None, since: dt.datetime | None = None
    ) -> dict[str, tuple[int, ...]]:
        """Durations of finished executions per name, in :data:`HISTOGRAM_BOUNDS_MS` buckets.

        Example::

            store.histogram(name="load")["load"]   # (n < 1 ms, n < 10 ms, ..., n >= 10 min)

        .. versionadded:: 0.1.0
        """
        found: dict[str, list[int]] = {}
        for n, bucket, count in self._backend.histogram(_text(name, "name"), _us(since, "since")):
            found.setdefault(n, [0] * (len(HISTOGRAM_BOUNDS_MS) + 1))[bucket] = count
        return {n: tuple(counts) for n, counts in found.items()}

    def upsert(self, executions: Iterable[Execution], events: Iterable[Event] = ()) -> int:
        """Store executions, replacing stored ones with the same id, in one transaction.

        Example::

            remote.upsert(local.list(since=yesterday))

        A finished execution replaces what is stored under its id; a ``running`` one is only
        added when nothing is stored under its id yet, so it never replaces a finished one.
        ``events`` are added in the same transaction. This is what the collector of
        ``execlog serve`` does with each batch it receives.

        Returns:
            How many executions were inserted or changed.

        Raises:
            StoreError: The database cannot be written.

        .. versionadded:: 0.1.0
        """
        finished: builtins.list[Row] = []
        running: builtins.list[Row] = []
        for ex in executions:
            (running if ex.status == "running" else finished).append(ex.to_row())
        event_rows = [ev.to_row() for ev in events]
        if not (finished or running or event_rows):
            return 0
        return self._backend.upsert(finished, running, event_rows)

    def delete(self, execution_id: str) -> int:
        """Remove an execution and all its descendants (with their events), in one transaction.

        Example::

            removed = store.delete(ex.execution_id)

        Descendants are found through parent links, however deep and whatever their
        correlation, so nothing is left pointing at a removed parent. An execution that is
        still running will be written again when it ends.

        Args:
            execution_id: The execution to remove with everything below it.

        Returns:
            How many executions were removed (0 for an unknown id).

        Raises:
            StoreError: The database cannot be written.

        .. versionadded:: 0.1.0
        """
        return self._backend.delete(_id(execution_id, "execution_id"))

    def prune(self, older_than: dt.timedelta = _THIRTY_DAYS, *, dry_run: bool = False) -> int:
        """Remove whole correlation trees whose root started more than ``older_than`` ago.

        Example::

            store.prune(older_than=timedelta(days=7))

        A tree goes whole or not at all, in one transaction, so pruning never leaves an
        execution whose parent was removed: a tree is kept while it still has a ``running``
        execution, and while an execution that stays (an explicit ``parent=`` from a newer
        tree) points into it.

        Args:
            older_than: Age of the cut-off; trees whose root started before ``now -
                older_than`` go.
            dry_run: Only count what would be removed.

        Returns:
            How many executions were removed (or would be).

        Raises:
            TypeError: ``older_than`` is not a ``timedelta``.
            ValueError: ``older_than`` is negative.
            StoreError: The database cannot be written.

        .. versionadded:: 0.1.0
        """
        if not isinstance(older_than, dt.timedelta):
            msg = f"older_than must be a datetime.timedelta, got {older_than!r}"
            raise TypeError(msg)
        if older_than < dt.timedelta(0):
            msg = f"older_than must not be negative, got {older_than!r}"
            raise ValueError(msg)
        cutoff = max(time.time_ns() // 1000 - older_than // _MICROSECOND, _MIN_US)
        return self._backend.prune(cutoff, dry_run=bool(dry_run))

    #: The fewest characters of an id a prefix needs (like git's abbreviated object names).
    MIN_PREFIX = 8
    #: How many matching ids an :class:`~execlog.AmbiguousIdError` lists at most.
    MAX_CANDIDATES = 10

    def resolve_id(self, id_or_prefix: str) -> str:
        """The full execution id that ``id_or_prefix`` names.

        Example::

            store.resolve_id("01a23d10-9a62-73b9")     # -> "01a23d10-9a62-73b9-99cc-1eb0..."

        An exact id wins; otherwise any prefix of at least :attr:`MIN_PREFIX` characters that
        exactly one id starts with names it, as in git.

        Raises:
            KeyError: No execution has this id or an id with this prefix (a prefix shorter than
                :attr:`MIN_PREFIX` characters never matches).
            AmbiguousIdError: Several ids start with the prefix (it lists them).
            TypeError: ``id_or_prefix`` is not a str.

        .. versionadded:: 0.1.0
        """
        return self._resolve("execution_id", _id(id_or_prefix, "execution_id"))

    def resolve_correlation_id(self, id_or_prefix: str) -> str:
        """The full correlation id that ``id_or_prefix`` names (see :meth:`resolve_id`).

        Example::

            store.correlation_chain(store.resolve_correlation_id("01a23d10-9a62"))

        Raises:
            KeyError: No correlation has this id or an id with this prefix.
            AmbiguousIdError: Several correlation ids start with the prefix.
            TypeError: ``id_or_prefix`` is not a str.

        .. versionadded:: 0.1.0
        """
        return self._resolve("correlation_id", _id(id_or_prefix, "correlation_id"))

    def _resolve(self, column: IdColumn, text: str) -> str:
        found = self._backend.ids_from(column, text, self.MAX_CANDIDATES + 1)
        matches = [i for i in found if i.startswith(text)]
        if text in matches:
            return text
        if len(text) < self.MIN_PREFIX or not matches:
            raise KeyError(text)
        if len(matches) == 1:
            return matches[0]
        more = len(matches) > self.MAX_CANDIDATES
        raise AmbiguousIdError(text, tuple(matches[: self.MAX_CANDIDATES]), more=more)

    def short_ids(self, execution_ids: Iterable[str]) -> dict[str, str]:
        """The shortest prefix of each id that no other execution id starts with.

        Example::

            short = store.short_ids(e.execution_id for e in store.recent(20))
            store.resolve_id(short[ex.execution_id]) == ex.execution_id      # True

        Each prefix has at least :attr:`MIN_PREFIX` characters and does not end in ``-``; an
        id that is itself the beginning of another id keeps all its characters. Unique when
        computed: executions recorded later may make a prefix ambiguous (lengthen it then).

        .. versionadded:: 0.1.0
        """
        short: dict[str, str] = {}
        for execution_id in execution_ids:
            before, after = self._backend.id_neighbours(_id(execution_id, "execution_id"))
            shared = max(_common(execution_id, before), _common(execution_id, after))
            length = max(self.MIN_PREFIX, shared + 1)
            while length < len(execution_id) and execution_id[length - 1] == "-":
                length += 1
            short[execution_id] = execution_id[:length]
        return short

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


def open_store(
    db: str | os.PathLike[str] | None = None, *, create: bool = False, token: str | None = None
) -> Store:
    """Open an execlog database for querying (migrated to this version's schema if needed).

    Example::

        store = execlog.open_store("runs.db")
        store.recent(5)
        empty = execlog.open_store("new.db", create=True)

    A database file that does not exist is an error, so that a mistyped path fails at once
    instead of answering every query with nothing; ``create=True`` creates it instead.

    Running rows left by processes of this host that no longer exist are marked
    ``abandoned`` on open.

    Args:
        db: A path, ``sqlite:///path`` or ``:memory:``; default ``EXECLOG_DB`` or
            ``./execlog.db``. ``http://host:port`` (or ``https://``) reads from an
            ``execlog serve`` through its JSON API; ``postgresql://`` reads a PostgreSQL
            database (extra ``execlog[postgres]``).
        create: Create the database when there is none at the path.
        token: The bearer token for a server (default ``EXECLOG_TOKEN``).

    Returns:
        A :class:`Store`.

    Raises:
        StoreNotFoundError: no database at the path and ``create`` is False (it is both a
            :class:`StoreError` and a :class:`FileNotFoundError`).
        StoreError: not an execlog database, corrupt, or cannot be opened.
        TypeError: ``db`` is not a str or ``os.PathLike``.
        ValueError: ``db`` is empty.
        SchemaError: the schema is newer than this library.

    .. versionadded:: 0.1.0
    """
    if db is not None and not isinstance(db, (str, os.PathLike)):
        msg = f"db must be a str or os.PathLike, got {db!r}"
        raise TypeError(msg)
    target = os.fspath(db) if db is not None else (os.environ.get("EXECLOG_DB") or DEFAULT_DB)
    if not isinstance(target, str):
        msg = f"db must be a str or os.PathLike of str, got {db!r}"
        raise TypeError(msg)
    if not target.strip():
        msg = f"db must not be empty, got {db!r}"
        raise ValueError(msg)
    path = local_path(target)
    if not create and path is not None and not os.path.exists(path):
        msg = f"no execlog database at {target!r} (open_store(..., create=True) creates one)"
        raise StoreNotFoundError(msg, target)
    if path is not None and os.path.isdir(path):
        msg = f"{target!r} is a directory, not an execlog database"
        raise StoreError(msg)
    backend = open_backend(target, token)
    try:
        backend.abandon_dead()
    except Exception:  # noqa: S110 - a read-only database can still be queried
        pass
    return Store(backend)
