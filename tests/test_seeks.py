"""Statistics and runs search by index seeks give exactly what one plain statement gives.

On SQLite, ``Store.stats`` without ``since`` and ``Store.runs(search=...)`` no longer run the
one statement that reads every row concerned (execlog._storage.seeks). On random data they are
compared with that statement run directly: the same numbers, the same runs in the same order,
page by page. PostgreSQL still runs the single statements; the same tests hold it to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import execlog
from conftest import raw
from execlog._storage import seeks
from execlog._storage import sqlite as backend
from pgcluster import is_postgres
from test_store import BASE_US, insert, node

if TYPE_CHECKING:
    from collections.abc import Callable

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- statistics ------------------------------------------------------------------------------


def one_statement_stats(db: str, name: str | None) -> list[tuple[Any, ...]]:
    """``Store.stats`` as the single statement computes it (still used with ``since``)."""
    if is_postgres(db):
        from execlog._storage import postgres

        sql, params = postgres.stats_statement(name, None)
    else:
        sql, params = backend.stats_statement(name, None)
    return [
        (str(n), int(count), int(errors), p50, p95, high)
        for n, count, errors, p50, p95, high in raw(db, sql, tuple(params))
    ]


class TestRanks:
    @pytest.mark.parametrize("fraction", seeks.PERCENTILES)
    def test_cume_dist_rank_is_the_first_rank_whose_share_reaches_the_fraction(
        self, fraction: float
    ) -> None:
        """SQLite's definition, checked rank by rank (floating point as SQLite computes it)."""
        for count in [*range(1, 2_000), 10**6 + 7, 3 * 10**7 + 1, 10**9 + 9]:
            rank = seeks.cume_dist_rank(fraction, count)
            assert rank / count >= fraction, count
            assert rank == 1 or (rank - 1) / count < fraction, count


STATS_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "B"]),
        st.sampled_from(["success", "success", "error", "running", "abandoned", "partial"]),
        st.one_of(
            st.none(),
            st.integers(0, 20).map(float),  # ties
            st.floats(0, 1e6, allow_nan=False),
        ),
    ),
    max_size=250,
)


class TestStats:
    @PROPERTY
    @given(rows=STATS_ROWS)
    def test_same_as_one_statement(
        self, scratch: Callable[[], str], rows: list[tuple[str, str, float | None]]
    ) -> None:
        """Every name and each name alone: count, errors, p50, p95, max exactly as before.

        Running rows (with or without a duration), rows without a duration, ties and names
        that only have running rows are all in the mix.
        """
        db = scratch()
        insert(
            db,
            [node(f"e{i}", name=n, status=s, duration_ms=d) for i, (n, s, d) in enumerate(rows)],
        )
        with execlog.open_store(db) as store:
            backend_rows = store._backend
            assert one_statement_stats(db, None) == backend_rows.stats(None, None)
            assert one_statement_stats(db, None) == backend_rows.stats(None, BASE_US)
            for name in ["a", "b", "c", "B", "none"]:
                assert one_statement_stats(db, name) == backend_rows.stats(name, None)

    def test_a_thousand_durations_seen_from_both_ends(self, path_db: str) -> None:
        """Enough rows that each percentile is found skipping from the nearer end."""
        rows = [
            node(f"e{i}", name="n", duration_ms=float((i * 7919) % 1000) / 10) for i in range(1000)
        ]
        rows += [node("late", name="n", status="running", duration_ms=5.0)]
        insert(path_db, rows)
        with execlog.open_store(path_db) as store:
            assert one_statement_stats(path_db, None) == store._backend.stats(None, None)
            [stats] = store.stats(name="n")
        assert (1000, 49.9, 94.9, 99.9) == (stats.count, stats.p50_ms, stats.p95_ms, stats.max_ms)


# -- text search of runs ---------------------------------------------------------------------

NAMES = ["load", "Load", "LOAD_x", "a%b", "a_b", "a\\b", "tool:fetch", "é", "É"]
MESSAGES = [None, None, "boom", "Not numeric", "100% done", "x_y", "back\\slash", "É!"]
SEARCHES = [
    *("load", "LOAD", "oa", "a%b", "a_b", "é", "É", "zzz"),  # names (and no match)
    *("boom", "numeric", "NOT", "100%", "x_y", "slash", "!"),  # error messages
    *("%", "_", "\\", "o"),  # both
]


def one_statement_runs(db: str, search: str, limit: int, offset: int) -> list[str]:
    """Root ids that the search used to find with one statement, run by run."""
    pattern = backend._like(search)
    sql = (
        "SELECT r.execution_id FROM executions AS r WHERE r.parent_execution_id IS NULL "
        "AND EXISTS (SELECT 1 FROM executions AS m WHERE m.correlation_id = r.correlation_id "
        "AND (m.name LIKE ? ESCAPE '\\' OR m.error_message LIKE ? ESCAPE '\\')) "
        "ORDER BY r.started_at DESC, r.execution_id DESC LIMIT ? OFFSET ?"
    )
    return [str(r[0]) for r in raw(db, sql, (pattern, pattern, limit, offset))]


@st.composite
def forests(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Runs of one to five executions; some retries join another run's correlation."""
    rows: list[dict[str, Any]] = []
    for tree in range(draw(st.integers(0, 12))):
        root, parent, correlation = f"t{tree}", None, f"t{tree}"
        if rows and draw(st.integers(0, 3)) == 0:  # a retry of an earlier execution
            repeated = draw(st.sampled_from(rows))
            parent = repeated["execution_id"]
            if draw(st.booleans()):
                correlation = repeated["correlation_id"]
        rows.append(
            node(
                root,
                parent,
                name=draw(st.sampled_from(NAMES)),
                error_message=draw(st.sampled_from(MESSAGES)),
                status=draw(st.sampled_from(["success", "error"])),
                correlation_id=correlation,
                started_at=BASE_US + draw(st.integers(0, 30)),
            )
        )
        for child in range(draw(st.integers(0, 4))):
            rows.append(
                node(
                    f"{root}-{child}",
                    root,
                    name=draw(st.sampled_from(NAMES)),
                    error_message=draw(st.sampled_from(MESSAGES)),
                    correlation_id=correlation,
                    started_at=BASE_US + 100 + len(rows),
                )
            )
    return rows


class TestRunsSearch:
    @PROPERTY
    @given(
        rows=forests(),
        search=st.sampled_from(SEARCHES),
        common_names=st.sampled_from([0, 3, 5000]),
        common_errors=st.sampled_from([0, 2, 1000]),
    )
    def test_same_as_one_statement_page_by_page(
        self,
        scratch: Callable[[], str],
        monkeypatch: pytest.MonkeyPatch,
        rows: list[dict[str, Any]],
        search: str,
        common_names: int,
        common_errors: int,
    ) -> None:
        """The same roots in the same order, every page (neither skipped nor repeated).

        Case as the backend's LIKE has it, wildcards literal. Names and error messages count
        as common beyond ``common_names`` and ``common_errors`` matching executions, so that
        every way of answering is taken.
        """
        monkeypatch.setattr(seeks, "DENSE_NAME_ROWS", common_names)
        monkeypatch.setattr(seeks, "DENSE_ERROR_ROWS", common_errors)
        db = scratch()
        insert(db, rows)
        expected = one_statement_runs(db, search, 1000, 0)
        with execlog.open_store(db) as store:
            assert expected == [r.root.execution_id for r in store.runs(search=search, limit=1000)]
            paged = [
                r.root.execution_id
                for offset in range(0, len(expected) + 2, 2)
                for r in store.runs(search=search, limit=2, offset=offset)
            ]
        assert expected == paged

    def test_nothing_found_is_answered_without_reading_runs(self, path_db: str) -> None:
        """A text in no name and no error message: no run, whatever the filters."""
        insert(path_db, [node("r", name="load"), node("c", "r", error_message="boom")])
        with execlog.open_store(path_db) as store:
            assert [] == store.runs(search="nowhere")
            assert ["r"] == [r.root.execution_id for r in store.runs(search="boo")]
            assert ["r"] == [r.root.execution_id for r in store.runs(search="oad")]


@pytest.fixture
def path_db(any_db: str) -> str:
    """A new, migrated, empty database of each backend."""
    execlog.open_store(any_db, create=True).close()
    return any_db
