"""Reads that one plain statement answers slowly on a large history, done in a few index seeks.

SQLite drives these with its statements (``sqlite.py``); the decisions are kept apart from the
SQL. PostgreSQL keeps the single statements (measured: its planner and index-only scans make
them about as fast there, see README, How fast it answers).

Statistics over a whole history: a name's counts come from the ``(name, duration_ms, status)``
index, and its percentiles from skipping to their rank in it (``ORDER BY duration_ms LIMIT 1
OFFSET k``) instead of sorting every duration of the name. The rank is the nearest rank as
``cume_dist()`` defines it, so the values are exactly those of the one-statement form.

Text search of runs: a run matches when any of its executions has the text in its name or its
error message. Names are few: the matching ones are found among the distinct names (one index
seek each). Error messages exist on failed rows only: they are read from a partial index. When
neither matches anything, the answer is known at once (empty); otherwise the roots are read
newest first, each checked against the correlations collected (rare matches) or its own run
searched (common matches, found in the newest runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from execlog._storage import Row, StatsRow

    #: Runs one statement with its parameters and returns its rows.
    Query = Callable[[str, Sequence[Any]], list[Row]]

__all__ = [
    "CHECK_EVERYTHING",
    "DENSE_ERROR_ROWS",
    "DENSE_NAMES",
    "DENSE_NAME_ROWS",
    "PERCENTILES",
    "SearchPlan",
    "SearchStatements",
    "StatsStatements",
    "cume_dist_rank",
    "plan_search",
    "seek_stats",
]

#: The percentiles of ``Store.stats``, as fractions.
PERCENTILES = (0.5, 0.95)

#: A search whose matching names have more executions than this is answered by checking each
#: root's executions for those names (such names are common: the newest runs hold them), not
#: by collecting the correlations of all their executions first.
DENSE_NAME_ROWS = 5_000

#: More matching names than this are checked run by run too (each would be one parameter).
DENSE_NAMES = 100

#: A search whose text is in more error messages than this looks for it in each root's run
#: (from the partial index of failed rows, by correlation); fewer are collected first.
DENSE_ERROR_ROWS = 1_000


def cume_dist_rank(fraction: float, count: int) -> int:
    """SQLite's nearest rank (1-based): the first ``rank`` with ``rank / count >= fraction``.

    What ``MIN(CASE WHEN cume_dist() >= fraction ...)`` picks, in the same floating point.
    """
    rank = max(1, math.ceil(fraction * count))
    while rank > 1 and (rank - 1) / count >= fraction:
        rank -= 1
    while rank < count and rank / count < fraction:
        rank += 1
    return rank


@dataclass(frozen=True, slots=True)
class StatsStatements:
    """A backend's statements for :func:`seek_stats` (parameters in brackets).

    ``totals``: (name, rows, errors) of every name, by name. ``totals_of``: the same for one
    name [name]. ``running``: (name, rows, rows with a duration) of ``running`` rows.
    ``untimed``: rows of a name without a duration [name]. ``nth`` and ``nth_from_top``: the
    duration at an offset among a name's finished durations, from the shortest and from the
    longest [name, offset].
    """

    totals: str
    totals_of: str
    running: str
    untimed: str
    nth: str
    nth_from_top: str


def seek_stats(
    query: Query,
    statements: StatsStatements,
    name: str | None,
    rank: Callable[[float, int], int],
) -> list[StatsRow]:
    """``Store.stats`` without ``since``: per name, count, errors, p50, p95, max duration.

    ``running`` rows are left out of everything; the percentiles and the maximum are over the
    durations that exist. Run inside one snapshot of the database.
    """
    totals = query(statements.totals, ()) if name is None else query(statements.totals_of, (name,))
    running = {str(n): (int(rows), int(timed)) for n, rows, timed in query(statements.running, ())}
    found: list[StatsRow] = []
    for row in totals:
        this, rows, errors = row[0], int(row[1]), int(row[2] or 0)  # the name as stored
        live, live_timed = running.get(str(this), (0, 0))
        if rows == live:
            continue  # only running executions: no line, as for a name never seen
        untimed = int(query(statements.untimed, (this,))[0][0])
        timed = rows - untimed - live_timed
        values: list[Any] = [None, None, None]
        if timed > 0:
            values = [
                *(_nth(query, statements, this, rank(p, timed), timed) for p in PERCENTILES),
                query(statements.nth_from_top, (this, 0))[0][0],
            ]
        found.append((str(this), rows - live, errors, values[0], values[1], values[2]))
    return found


def _nth(
    query: Query,
    statements: StatsStatements,
    name: Any,
    rank: int,
    count: int,
) -> Any:
    """The ``rank``-th shortest duration of ``name``, skipping from whichever end is nearer."""
    if rank - 1 <= count - rank:
        return query(statements.nth, (name, rank - 1))[0][0]
    return query(statements.nth_from_top, (name, count - rank))[0][0]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How a runs search is answered, decided from the names and error messages it matches.

    Each kind of match is either collected first, when it is rare (the roots are then checked
    against the correlations found), or, when it is common, looked for in each root's run
    (the newest runs soon fill a page). ``names``: the matching names, collected. ``dense_names``:
    matching names looked for run by run. ``errors``: matching error messages, collected.
    ``dense_errors``: looked for run by run.
    """

    names: tuple[str, ...]
    dense_names: bool
    errors: bool
    dense_errors: bool

    @property
    def empty(self) -> bool:
        """Whether nothing can match: no name and no error message holds the text."""
        return not (self.names or self.dense_names or self.errors or self.dense_errors)


#: A plan for any search, whatever it matches: names and error messages looked for in each
#: run. Statements built without a plan use it.
CHECK_EVERYTHING = SearchPlan((), dense_names=True, errors=False, dense_errors=True)


@dataclass(frozen=True, slots=True)
class SearchStatements:
    """A backend's statements for :func:`plan_search` (parameters in brackets).

    ``names``: the distinct names that match [pattern]. ``name_rows``: how many executions
    have one of up to ``DENSE_NAMES`` names, counted up to a limit [the names, padded with
    NULL to ``DENSE_NAMES``, limit].
    ``error_rows``: how many error messages match, counted up to a limit [pattern, limit].
    """

    names: str
    name_rows: str
    error_rows: str


def plan_search(query: Query, statements: SearchStatements, pattern: str) -> SearchPlan:
    """Find what a search pattern matches, and so how to find its runs (a few index reads)."""
    names = tuple(r[0] for r in query(statements.names, (pattern,)))  # as stored, to bind back
    dense_names = len(names) > DENSE_NAMES
    if names and not dense_names:
        padding = (None,) * (DENSE_NAMES - len(names))  # NULL matches no name
        counted = query(statements.name_rows, (*names, *padding, DENSE_NAME_ROWS + 1))
        dense_names = int(counted[0][0]) > DENSE_NAME_ROWS
    if dense_names:  # the newest runs hold such names: their error messages are read run by run
        return SearchPlan((), dense_names=True, errors=False, dense_errors=True)
    errors = int(query(statements.error_rows, (pattern, DENSE_ERROR_ROWS + 1))[0][0])
    return SearchPlan(
        names,
        dense_names=False,
        errors=0 < errors <= DENSE_ERROR_ROWS,
        dense_errors=errors > DENSE_ERROR_ROWS,
    )
