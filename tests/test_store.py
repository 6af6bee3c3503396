"""The query API: list, lineage, stats, delete and prune, cycles, query plans, concurrency."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import execlog
from conftest import raw
from execlog._storage import COLUMNS, ListQuery, RunsQuery
from execlog._storage import sqlite as backend
from execlog._storage.migrations import MIGRATIONS
from execlog._storage.seeks import SearchPlan
from execlog.store import Lineage, Stats
from pgcluster import is_postgres, run_sql

if TYPE_CHECKING:
    from collections.abc import Callable

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DAY_US = 86_400 * 1_000_000
#: Property tests make a fresh database per example themselves (the ``scratch`` fixture).
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def at(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def now_us() -> int:
    return time.time_ns() // 1000


def node(eid: str, parent: str | None = None, **values: Any) -> dict[str, Any]:
    """One row; the correlation defaults to the parent's (see ``insert``)."""
    return {"execution_id": eid, "parent_execution_id": parent, **values}


def insert(db: str | Path, nodes: list[dict[str, Any]]) -> None:
    """Insert rows straight into a migrated database, filling unspecified columns.

    A row without ``correlation_id`` takes its parent's (parents listed earlier), or its own id.
    Rows without ``started_at`` start one microsecond apart in list order.
    """
    corr: dict[str, str] = {}
    full = []
    for i, given_values in enumerate(nodes):
        row: dict[str, Any] = {
            "name": "n",
            "kind": "function",
            "status": "success",
            "started_at": BASE_US + i,
            "ended_at": None,
            "duration_ms": 1.0,
            "inputs": None,
            "output": None,
            "error_type": None,
            "error_message": None,
            "error_stack": None,
            "parent_execution_id": None,
            "trigger_kind": "manual",
            "run_id": None,
            "tags": None,
            "pid": 1,
            "thread_id": 1,
            "host": "elsewhere",
            **given_values,
        }
        if "correlation_id" not in given_values:
            row["correlation_id"] = corr.get(row["parent_execution_id"], row["execution_id"])
        corr[row["execution_id"]] = row["correlation_id"]
        full.append(tuple(row[c] for c in COLUMNS))
    statement = (
        f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    )
    if is_postgres(db):
        _months(db, {r[COLUMNS.index("started_at")] for r in full})
        run_sql(str(db), statement, many=full)
        return
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            conn.executemany(statement, full)
    finally:
        conn.close()


_MONTHS_MADE: set[tuple[str, int]] = set()


def _months(db: str | Path, starts: set[int]) -> None:
    """Create the monthly partitions rows inserted by hand need (the writer does it itself)."""
    if {(str(db), us // (28 * DAY_US)) for us in starts} <= _MONTHS_MADE:
        return
    _MONTHS_MADE.update((str(db), us // (28 * DAY_US)) for us in starts)
    with execlog.open_store(db) as store:
        store._backend._ensure_partitions([(0,) * 4 + (us,) for us in starts])  # type: ignore[attr-defined]


def ids(found: Any) -> list[str]:
    return [e.execution_id for e in found]


def all_ids(db: str | Path) -> set[str]:
    return {r[0] for r in raw(db, "SELECT execution_id FROM executions")}


def orphans(db: str | Path) -> set[str]:
    """Executions whose parent id names no stored execution."""
    return {
        r[0]
        for r in raw(
            db,
            "SELECT execution_id FROM executions AS e WHERE parent_execution_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM executions AS p "
            "WHERE p.execution_id = e.parent_execution_id)",
        )
    }


@pytest.fixture
def path(any_db: str) -> str:
    """A new, migrated, empty database: a SQLite file, then a PostgreSQL schema."""
    execlog.open_store(any_db, create=True).close()
    return any_db


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A new, migrated, empty SQLite file (for what only SQLite has)."""
    db = tmp_path / "q.db"
    execlog.open_store(db, create=True).close()
    return db


@pytest.fixture
def db(any_db: str) -> str:
    """A fresh database of each backend, configured as execlog's target."""
    execlog.configure(db=any_db)
    return any_db


def chain(prefix: str, length: int, **values: Any) -> list[dict[str, Any]]:
    """``prefix0`` (root) <- ``prefix1`` <- ... <- ``prefix{length-1}``."""
    return [
        node(f"{prefix}{i}", f"{prefix}{i - 1}" if i else None, **values) for i in range(length)
    ]


class TestLineage:
    def test_deep_chain_depth_bounds_each_direction(self, path: Path) -> None:
        """30 levels: depth bounds ancestors and descendants; ancestors are root first."""
        insert(path, chain("d", 30))
        with execlog.open_store(path) as store:
            leaf = store.lineage("d29", depth=30)
            assert [f"d{i}" for i in range(29)] == ids(leaf.ancestors)
            assert [] == ids(leaf.descendants)
            assert [f"d{i}" for i in range(9, 29)] == ids(store.lineage("d29").ancestors)
            assert [f"d{i}" for i in range(26, 29)] == ids(store.lineage("d29", 3).ancestors)

            middle = store.lineage("d15", depth=4)
            assert ["d11", "d12", "d13", "d14"] == ids(middle.ancestors)
            assert ["d16", "d17", "d18", "d19"] == ids(middle.descendants)
            assert "d15" == middle.execution.execution_id

            root = store.lineage("d0")
            assert [] == ids(root.ancestors)
            assert [f"d{i}" for i in range(1, 21)] == ids(root.descendants)
            assert [f"d{i}" for i in range(1, 30)] == ids(store.lineage("d0", 1000).descendants)

            nothing = store.lineage("d15", depth=0)
            assert ([], []) == (ids(nothing.ancestors), ids(nothing.descendants))

    def test_wide_tree_children_and_siblings(self, path: Path) -> None:
        """200 children: children and descendants by start time, siblings exclude the execution."""
        kids = [node(f"k{i:03}", "w", started_at=BASE_US + 1000 - i) for i in range(200)]
        insert(path, [node("w"), *kids])
        by_start = [f"k{i:03}" for i in reversed(range(200))]
        with execlog.open_store(path) as store:
            assert by_start == ids(store.children("w"))
            lineage = store.lineage("k100")
            assert ["w"] == ids(lineage.ancestors)
            assert [k for k in by_start if k != "k100"] == ids(lineage.siblings)
            assert [] == ids(lineage.descendants)
            assert by_start == ids(store.lineage("w").descendants)
            assert [] == ids(store.lineage("w").siblings)

    def test_descendants_are_breadth_first_by_level_then_start(self, path: Path) -> None:
        """Level by level; inside a level by start time (then id), whoever the parent is."""
        insert(
            path,
            [
                node("r", started_at=BASE_US),
                node("a", "r", started_at=BASE_US + 50),
                node("b", "r", started_at=BASE_US + 10),
                node("a1", "a", started_at=BASE_US + 51),
                node("b1", "b", started_at=BASE_US + 60),
                node("b2", "b", started_at=BASE_US + 60),
                node("a1x", "a1", started_at=BASE_US + 52),
            ],
        )
        with execlog.open_store(path) as store:
            assert ["b", "a", "a1", "b1", "b2", "a1x"] == ids(store.lineage("r").descendants)
            assert ["a1", "b1", "b2"] == ids(store.lineage("r", depth=2).descendants)[2:]

    def test_multiple_correlations_stay_apart(self, path: Path) -> None:
        """Trees of other correlations never show up in a lineage."""
        for t in range(5):
            insert(path, [node(f"t{t}"), *[node(f"t{t}c{i}", f"t{t}") for i in range(3)]])
        with execlog.open_store(path) as store:
            lineage = store.lineage("t2c1")
            assert (["t2"], ["t2c0", "t2c2"], []) == (
                ids(lineage.ancestors),
                ids(lineage.siblings),
                ids(lineage.descendants),
            )
            assert ["t2c0", "t2c1", "t2c2"] == ids(store.lineage("t2").descendants)
            assert ["t2", "t2c0", "t2c1", "t2c2"] == ids(store.correlation_chain("t2"))
            assert "t2" == store.root("t2").execution_id

    def test_siblings_of_a_root_are_the_other_roots_of_its_correlation(self, path: Path) -> None:
        """Roots sharing a correlation id are siblings; a lone root has none."""
        insert(
            path,
            [
                node("r1", correlation_id="batch", started_at=BASE_US + 2),
                node("r2", correlation_id="batch", started_at=BASE_US + 1),
                node("r3", correlation_id="batch", started_at=BASE_US + 3),
                node("k", "r1"),
                node("lone"),
            ],
        )
        with execlog.open_store(path) as store:
            assert ["r2", "r3"] == ids(store.lineage("r1").siblings)
            assert ["r2", "r1"] == ids(store.lineage("r3").siblings)
            assert [] == ids(store.lineage("lone").siblings)
            assert [] == ids(store.lineage("k").siblings)
            assert "r2" == store.root("batch").execution_id

    def test_retries_with_explicit_parents_across_trees(self, db: str) -> None:
        """Recorded retries: parent= links a retry to the failure, within or across trees."""
        with (
            execlog.execution("nightly") as nightly,
            pytest.raises(RuntimeError),
            execlog.execution("publish") as failed,
        ):
            raise RuntimeError("503")
        with (
            execlog.execution("publish", parent=failed.execution_id, trigger_kind="retry") as r1,
            execlog.execution("upload") as upload,
        ):
            pass
        with execlog.execution(
            "publish", parent=failed, correlation_id="repair-7", trigger_kind="repair"
        ) as r2:
            pass
        assert execlog.flush(timeout=5)
        with execlog.open_store(db) as store:
            assert nightly.correlation_id == r1.correlation_id
            lineage = store.lineage(upload.execution_id)
            assert [nightly.execution_id, failed.execution_id, r1.execution_id] == ids(
                lineage.ancestors
            )
            below = store.lineage(failed.execution_id)
            assert [r1.execution_id, r2.execution_id, upload.execution_id] == ids(below.descendants)
            assert [r2.execution_id] == ids(store.lineage(r1.execution_id).siblings)
            assert "repair-7" == store.get(r2.execution_id).correlation_id
            assert r2.execution_id == store.root("repair-7").execution_id
            assert nightly.execution_id == store.root(nightly.correlation_id).execution_id
            assert [nightly.execution_id, failed.execution_id] == ids(
                store.lineage(r2.execution_id).ancestors
            )

    def test_recorded_tree(self, db: str) -> None:
        """Nested recording: lineage and children agree with the handles."""
        with execlog.execution("root") as root:
            with execlog.execution("a") as a, execlog.execution("a1") as a1:
                pass
            with execlog.execution("b") as b:
                pass
        assert execlog.flush(timeout=5)
        with execlog.open_store(db) as store:
            lineage = store.lineage(a1.execution_id)
            assert [root.execution_id, a.execution_id] == ids(lineage.ancestors)
            assert [b.execution_id] == ids(store.lineage(a.execution_id).siblings)
            assert [a.execution_id, b.execution_id, a1.execution_id] == ids(
                store.lineage(root.execution_id).descendants
            )
            assert [a.execution_id, b.execution_id] == ids(store.children(root.execution_id))

    def test_unknown_id_raises_key_error(self, path: Path) -> None:
        """lineage() of an unknown id raises KeyError (get() is the lookup that returns None)."""
        with execlog.open_store(path) as store, pytest.raises(KeyError, match="nope"):
            store.lineage("nope")

    @pytest.mark.parametrize(
        ("depth", "error"),
        [
            (-1, ValueError),
            (1.5, TypeError),
            ("3", TypeError),
            (True, TypeError),
            (None, TypeError),
            (2**63, ValueError),
        ],
    )
    def test_bad_depth(self, path: Path, depth: Any, error: type[Exception]) -> None:
        """depth must be a non-negative int; the message names it."""
        insert(path, [node("x")])
        with execlog.open_store(path) as store, pytest.raises(error, match="depth"):
            store.lineage("x", depth=depth)

    def test_lineage_is_immutable_and_json_ready(self, path: Path) -> None:
        """Frozen, tuples inside, and to_dict() goes through json."""
        insert(path, [node("p"), node("x", "p"), node("y", "p"), node("c", "x")])
        with execlog.open_store(path) as store:
            lineage = store.lineage("x")
        assert isinstance(lineage, Lineage)
        assert isinstance(lineage.ancestors, tuple)
        with pytest.raises(dataclasses.FrozenInstanceError):
            lineage.ancestors = ()  # type: ignore[misc]
        data = json.loads(json.dumps(lineage.to_dict()))
        assert ["execution", "ancestors", "descendants", "siblings"] == list(data)
        assert ("x", ["p"], ["c"], ["y"]) == (
            data["execution"]["execution_id"],
            [e["execution_id"] for e in data["ancestors"]],
            [e["execution_id"] for e in data["descendants"]],
            [e["execution_id"] for e in data["siblings"]],
        )


def _loop(db: str | Path, members: list[str]) -> None:
    """Hand-edit parent ids so that ``members`` form a cycle (each the parent of the next)."""
    if is_postgres(db):
        for child, parent in zip(members, members[-1:] + members[:-1]):
            raw(
                db,
                "UPDATE executions SET parent_execution_id = ? WHERE execution_id = ?",
                (parent, child),
            )
        return
    conn = sqlite3.connect(db)
    try:
        with conn:
            for child, parent in zip(members, members[-1:] + members[:-1]):
                conn.execute(
                    "UPDATE executions SET parent_execution_id = ? WHERE execution_id = ?",
                    (parent, child),
                )
    finally:
        conn.close()


@pytest.mark.timeout(20)
class TestCycles:
    def test_two_node_loop(self, path: Path) -> None:
        """a -> b -> a: lineage ends, each list holds b once, never a itself."""
        insert(path, [node("a"), node("b", "a"), node("c", "b")])
        _loop(path, ["a", "b"])
        with execlog.open_store(path) as store:
            lineage = store.lineage("a", depth=1000)
            assert (["b"], ["b", "c"]) == (ids(lineage.ancestors), ids(lineage.descendants))
            assert ["a", "b"] == ids(store.lineage("c", depth=1000).ancestors)
            assert [] == ids(store.lineage("c").descendants)

    def test_self_parent(self, path: Path) -> None:
        """An execution that is its own parent has no ancestors or descendants but itself."""
        insert(path, [node("s"), node("k", "s")])
        _loop(path, ["s"])
        with execlog.open_store(path) as store:
            lineage = store.lineage("s", depth=1000)
            assert ([], ["k"]) == (ids(lineage.ancestors), ids(lineage.descendants))
            assert ["s"] == ids(store.lineage("k").ancestors)

    def test_chain_running_into_a_loop_it_is_not_part_of(self, path: Path) -> None:
        """x -> p -> q -> r -> q: x's ancestors stop before repeating q, root-most first."""
        insert(path, [node("r"), node("q", "r"), node("p", "q"), node("x", "p")])
        _loop(path, ["q", "r"])
        with execlog.open_store(path) as store:
            assert ["r", "q", "p"] == ids(store.lineage("x", depth=10**6).ancestors)
            assert ["q", "p", "x"] == ids(store.lineage("r", depth=10**6).descendants)

    def test_large_loop_with_branches_visits_everything_once(self, path: Path) -> None:
        """A 50-long loop where each member also has 20 children: every id at most once."""
        members = [f"m{i:02}" for i in range(50)]
        rows = [node(m) for m in members]
        rows += [node(f"{m}-k{j}", m) for m in members for j in range(20)]
        insert(path, rows)
        _loop(path, members)
        with execlog.open_store(path) as store:
            start = time.monotonic()
            lineage = store.lineage("m00", depth=10**9)
            assert time.monotonic() - start < 5
            up, down = ids(lineage.ancestors), ids(lineage.descendants)
            assert len(set(up)) == len(up) == 49
            assert "m00" not in up
            assert "m00" not in down
            assert len(set(down)) == len(down) == 49 + 50 * 20
            assert 1050 == store.delete("m00")

    def test_delete_and_prune_terminate_on_loops(self, path: Path) -> None:
        """delete() on a loop removes its members once; prune() skips a tree with no root."""
        insert(
            path,
            [
                node("a", started_at=BASE_US),
                node("b", "a", started_at=BASE_US),
                node("c", "b", started_at=BASE_US),
                node("z", started_at=BASE_US),
            ],
        )
        _loop(path, ["a", "b"])
        with execlog.open_store(path) as store:
            assert 1 == store.prune(older_than=dt.timedelta(0), dry_run=True)
            assert 3 == store.delete("b")
            assert {"z"} == all_ids(path)


def nearest_rank(values: list[float], percent: int) -> float | None:
    """The smallest value that at least ``percent``% of values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(percent * len(ordered) + 99) // 100 - 1]


class TestStats:
    def test_values_match_numbers_computed_here(self, path: Path) -> None:
        """count, errors, error_rate, p50, p95, max per name; running rows left out."""
        durations = {
            "load": [float(d) for d in (5, 1, 9, 3, 7, 2, 8, 6, 4, 10, 3, 3)],
            "publish": [0.5 * i for i in range(1, 41)],
            "solo": [42.0],
        }
        rows = []
        statuses = ["success", "error", "partial", "cancelled"]
        for name, values in durations.items():
            for i, value in enumerate(values):
                status = statuses[i % 4] if name != "solo" else "error"
                rows.append(node(f"{name}-{i}", name=name, status=status, duration_ms=value))
        rows += [
            node("load-running", name="load", status="running", duration_ms=None),
            node("load-abandoned", name="load", status="abandoned", duration_ms=None),
            node("gone", name="gone", status="abandoned", duration_ms=None),
            node("live", name="live", status="running", duration_ms=None),
        ]
        insert(path, rows)
        with execlog.open_store(path) as store:
            found = store.stats()
        expected = []
        for name in sorted([*durations, "gone"]):
            values = durations.get(name, [])
            count = len(values) + (name in {"load", "gone"})
            errors = sum(
                1
                for i in range(len(values))
                if (statuses[i % 4] if name != "solo" else "error") == "error"
            )
            expected.append(
                Stats(
                    name,
                    count,
                    errors,
                    errors / count,
                    nearest_rank(values, 50),
                    nearest_rank(values, 95),
                    max(values) if values else None,
                )
            )
        assert expected == found
        assert (13, 3, 4.0, 10.0, 10.0) == (
            found[1].count,
            found[1].errors,
            found[1].p50_ms,
            found[1].p95_ms,
            found[1].max_ms,
        )

    def test_name_and_since_filters(self, path: Path) -> None:
        """name is exact; since is inclusive on started_at."""
        rows = [
            node(f"x{i}", name="x", started_at=BASE_US + i, duration_ms=float(i), status=s)
            for i, s in enumerate(["error", "success", "success", "error", "success"])
        ]
        rows += [node("y0", name="y", started_at=BASE_US + 10, duration_ms=99.0)]
        insert(path, rows)
        with execlog.open_store(path) as store:
            assert [Stats("x", 2, 1, 0.5, 3.0, 4.0, 4.0)] == store.stats(
                name="x", since=at(BASE_US + 3)
            )
            assert ["x", "y"] == [s.name for s in store.stats(since=at(BASE_US + 4))]
            assert [] == store.stats(name="X")
            assert [] == store.stats(since=at(BASE_US + 11))
            assert [Stats("y", 1, 0, 0.0, 99.0, 99.0, 99.0)] == store.stats(name="y")

    @PROPERTY
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c"]),
                st.sampled_from(["success", "error", "running", "abandoned"]),
                st.one_of(st.none(), st.integers(0, 50).map(float)),
            ),
            max_size=80,
        )
    )
    def test_matches_a_python_model(
        self, scratch: Callable[[], str], rows: list[tuple[str, str, float | None]]
    ) -> None:
        """For any mix of names, statuses and durations (ties, gaps), SQL == Python."""
        if True:
            db = scratch()
            insert(
                db,
                [
                    node(f"e{i}", name=n, status=s, duration_ms=d)
                    for i, (n, s, d) in enumerate(rows)
                ],
            )
            with execlog.open_store(db) as store:
                found = store.stats()
        expected = []
        for name in sorted({n for n, s, _ in rows if s != "running"}):
            done = [(s, d) for n, s, d in rows if n == name and s != "running"]
            values = [d for _, d in done if d is not None]
            errors = sum(s == "error" for s, _ in done)
            expected.append(
                Stats(
                    name,
                    len(done),
                    errors,
                    errors / len(done),
                    nearest_rank(values, 50),
                    nearest_rank(values, 95),
                    max(values, default=None),
                )
            )
        assert expected == found

    def test_stats_object(self, path: Path) -> None:
        """Stats is a frozen dataclass exported by execlog, with a JSON-ready to_dict()."""
        insert(path, [node("a", name="n", duration_ms=2.0)])
        with execlog.open_store(path) as store:
            [stats] = store.stats()
        assert execlog.Stats is Stats
        assert "Stats" in execlog.__all__
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.count = 3  # type: ignore[misc]
        assert {
            "name": "n",
            "count": 1,
            "errors": 0,
            "error_rate": 0.0,
            "p50_ms": 2.0,
            "p95_ms": 2.0,
            "max_ms": 2.0,
        } == json.loads(json.dumps(stats.to_dict()))

    def test_empty_database(self, path: Path) -> None:
        """No executions, no stats."""
        with execlog.open_store(path) as store:
            assert [] == store.stats()


def two_trees_and_a_retry() -> list[dict[str, Any]]:
    """t1: a(b(c, d), e); t2: x(y); a retry r in t2 whose explicit parent is b (in t1)."""
    return [
        node("a"),
        node("b", "a"),
        node("c", "b"),
        node("d", "b"),
        node("e", "a"),
        node("x"),
        node("y", "x"),
        node("r", "b", correlation_id="x"),
        node("r1", "r"),
    ]


class TestDelete:
    def test_removes_exactly_the_subtree(self, path: Path) -> None:
        """The execution and its descendants (whatever their correlation) go; nothing else."""
        insert(path, two_trees_and_a_retry())
        with execlog.open_store(path) as store:
            assert 5 == store.delete("b")
            assert {"a", "e", "x", "y"} == all_ids(path)
            assert set() == orphans(path)
            assert ["e"] == ids(store.children("a"))
            assert 1 == store.delete("y")
            assert 0 == store.delete("y")
            assert 0 == store.delete("unknown")
            assert {"a", "e", "x"} == all_ids(path)

    def test_deep_and_wide(self, path: Path) -> None:
        """A 300-deep chain and a 500-wide fan-out go whole."""
        insert(path, [*chain("d", 300), node("w"), *[node(f"w{i}", "w") for i in range(500)]])
        with execlog.open_store(path) as store:
            assert 200 == store.delete("d100")
            assert 501 == store.delete("w")
            assert {f"d{i}" for i in range(100)} == all_ids(path)

    def test_one_transaction(self, path: Path) -> None:
        """If removing any row fails, none is removed (and the error is a StoreError)."""
        insert(path, two_trees_and_a_retry())
        if is_postgres(path):
            raw(
                path,
                "CREATE FUNCTION keep_d() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF old.execution_id = 'd' THEN RAISE EXCEPTION 'd is protected'; END IF; "
                "RETURN old; END $$",
            )
            raw(
                path,
                "CREATE TRIGGER keep_d BEFORE DELETE ON executions "
                "FOR EACH ROW EXECUTE FUNCTION keep_d()",
            )
        else:
            conn = sqlite3.connect(path)
            conn.execute(
                "CREATE TRIGGER keep_d BEFORE DELETE ON executions WHEN old.execution_id = 'd' "
                "BEGIN SELECT RAISE(ABORT, 'd is protected'); END"
            )
            conn.close()
        before = all_ids(path)
        with execlog.open_store(path) as store:
            with pytest.raises(execlog.StoreError, match="d is protected"):
                store.delete("a")
            assert before == all_ids(path)
            assert 1 == store.delete("e")

    def test_bad_id(self, path: Path) -> None:
        """Ids are strings."""
        with execlog.open_store(path) as store, pytest.raises(TypeError, match="execution_id"):
            store.delete(None)  # type: ignore[arg-type]


def days_ago(days: float) -> int:
    return now_us() - int(days * DAY_US)


class TestPrune:
    def test_removes_old_trees_keeps_newer_ones(self, path: Path) -> None:
        """Trees whose root started before the cut-off go whole; the others stay whole."""
        insert(
            path,
            [
                node("old1", started_at=days_ago(40)),
                node("old1-k", "old1", started_at=days_ago(1)),  # a late child: goes with it
                node("old2", started_at=days_ago(31)),
                *[node(f"old2-{i}", "old2", started_at=days_ago(31)) for i in range(5)],
                node("new", started_at=days_ago(29)),
                node("new-early", "new", started_at=days_ago(35)),  # skewed clock: stays
            ],
        )
        with execlog.open_store(path) as store:
            assert 8 == store.prune(dry_run=True)
            assert 8 == len(all_ids(path)) - 2
            assert 8 == store.prune()
            assert {"new", "new-early"} == all_ids(path)
            assert 0 == store.prune()
            assert 2 == store.prune(older_than=dt.timedelta(0))
            assert set() == all_ids(path)

    def test_never_orphans_keeps_trees_newer_ones_point_into(self, path: Path) -> None:
        """An old tree that a newer tree's retry points into stays, transitively."""
        insert(
            path,
            [
                node("t0", started_at=days_ago(60)),
                node("t0-fail", "t0", started_at=days_ago(60)),
                node("t1", "t0-fail", correlation_id="t1", started_at=days_ago(50)),
                node("t1-fail", "t1", started_at=days_ago(50)),
                node("t2", "t1-fail", correlation_id="t2", started_at=days_ago(1)),
                node("lone", started_at=days_ago(45)),
                node("lone-k", "lone", started_at=days_ago(45)),
            ],
        )
        with execlog.open_store(path) as store:
            assert 2 == store.prune(older_than=dt.timedelta(days=30))
            assert {"t0", "t0-fail", "t1", "t1-fail", "t2"} == all_ids(path)
            assert 5 == store.prune(older_than=dt.timedelta(hours=1))
            assert set() == all_ids(path)

    def test_keeps_running_trees(self, path: Path) -> None:
        """A tree with a running execution is never pruned."""
        insert(
            path,
            [
                node("live", started_at=days_ago(90), status="running"),
                node("live-k", "live", started_at=days_ago(90)),
                node("done", started_at=days_ago(90)),
            ],
        )
        with execlog.open_store(path) as store:
            assert 1 == store.prune()
            assert {"live", "live-k"} == all_ids(path)

    def test_dangling_parents_and_shared_correlations(self, path: Path) -> None:
        """A root whose parent was recorded elsewhere counts as a root; several roots of one
        correlation go together when the earliest is old."""
        insert(
            path,
            [
                node("sub", "outside-parent", correlation_id="ext", started_at=days_ago(40)),
                node("r-old", correlation_id="batch", started_at=days_ago(40)),
                node("r-new", correlation_id="batch", started_at=days_ago(1)),
                node("keep", started_at=days_ago(1)),
            ],
        )
        with execlog.open_store(path) as store:
            assert 3 == store.prune()
            assert {"keep"} == all_ids(path)

    @pytest.mark.parametrize(
        ("older_than", "error"),
        [
            (30, TypeError),
            (dt.datetime(2026, 1, 1, tzinfo=UTC), TypeError),
            ("30d", TypeError),
            (None, TypeError),
            (dt.timedelta(seconds=-1), ValueError),
        ],
    )
    def test_bad_older_than(self, path: Path, older_than: Any, error: type[Exception]) -> None:
        """older_than is a non-negative timedelta; the message names it."""
        with execlog.open_store(path) as store, pytest.raises(error, match="older_than"):
            store.prune(older_than=older_than)

    def test_huge_older_than_removes_nothing(self, path: Path) -> None:
        """A cut-off before any representable time prunes nothing (no overflow)."""
        insert(path, [node("a", started_at=-(2**62))])
        with execlog.open_store(path) as store:
            assert 0 == store.prune(older_than=dt.timedelta.max)
            assert {"a"} == all_ids(path)


# -- a Python model of lineage, delete and prune, checked on random (even cyclic) forests --

Forest = list[tuple[str, str | None, str, int, str]]  # id, parent, correlation, start, status


@st.composite
def forests(draw: st.DrawFn) -> Forest:
    size = draw(st.integers(1, 14))
    eids = [f"n{i}" for i in range(size)]
    rows = []
    for eid in eids:
        parent = draw(st.one_of(st.none(), st.sampled_from([*eids, "ghost"])))
        corr = draw(st.sampled_from(["c1", "c2", "c3"]))
        start = draw(st.integers(0, 6))
        status = draw(st.sampled_from(["success", "success", "error", "running"]))
        rows.append((eid, parent, corr, start, status))
    return rows


def model_lineage(rows: Forest, eid: str, depth: int) -> tuple[list[str], list[str], list[str]]:
    by_id = {r[0]: r for r in rows}
    key = {r[0]: (r[3], r[0]) for r in rows}
    up: list[str] = []
    seen = {eid}
    cur = by_id[eid][1]
    while cur in by_id and len(up) < depth and cur not in seen:
        up.append(cur)
        seen.add(cur)
        cur = by_id[cur][1]
    down: list[str] = []
    level = [eid]
    for _ in range(depth):
        level = sorted(
            (r[0] for r in rows if r[1] in set(level) and r[0] != eid), key=key.__getitem__
        )
        if not level:
            break
        down += level
    me = by_id[eid]
    if me[1] is None:
        sibs = [r[0] for r in rows if r[1] is None and r[2] == me[2] and r[0] != eid]
    else:
        sibs = [r[0] for r in rows if r[1] == me[1] and r[0] != eid]
    return up[::-1], down, sorted(sibs, key=key.__getitem__)


def model_prune(rows: Forest, cut: int) -> set[str]:
    by_id = {r[0]: r for r in rows}

    def inside(r: tuple[str, str | None, str, int, str]) -> bool:
        return r[1] in by_id and by_id[r[1]][2] == r[2]

    doomed = {r[2] for r in rows if r[3] < cut and not inside(r)}
    doomed -= {r[2] for r in rows if r[4] == "running"}
    while True:
        keep = {
            by_id[r[1]][2]
            for r in rows
            if r[1] in by_id and by_id[r[1]][2] in doomed and r[2] not in doomed
        }
        if not keep:
            break
        doomed -= keep
    return {r[0] for r in rows if r[2] in doomed}


def _forest_db(db: str, rows: Forest) -> str:
    insert(
        db,
        [
            node(e, p, correlation_id=c, started_at=BASE_US + s, status=status)
            for e, p, c, s, status in rows
        ],
    )
    return db


class TestAgainstModel:
    @PROPERTY
    @given(forests(), st.sampled_from([0, 1, 2, 5, 100]))
    def test_lineage(self, scratch: Callable[[], str], rows: Forest, depth: int) -> None:
        """Ancestors, descendants and siblings equal the model's, with no duplicates."""
        if True:
            db = _forest_db(scratch(), rows)
            with execlog.open_store(db) as store:
                for eid, *_ in rows:
                    lineage = store.lineage(eid, depth=depth)
                    found = (
                        ids(lineage.ancestors),
                        ids(lineage.descendants),
                        ids(lineage.siblings),
                    )
                    assert model_lineage(rows, eid, depth) == found, eid
                    for part in found[:2]:
                        assert len(set(part)) == len(part)
                        assert eid not in part

    @PROPERTY
    @given(forests(), st.integers(0, 13))
    def test_delete(self, scratch: Callable[[], str], rows: Forest, pick: int) -> None:
        """delete() removes the model's full descendant set and leaves no new orphan."""
        eid = rows[pick % len(rows)][0]
        if True:
            db = _forest_db(scratch(), rows)
            before = orphans(db)
            _, below, _ = model_lineage(rows, eid, 10**6)
            with execlog.open_store(db) as store:
                assert 1 + len(below) == store.delete(eid)
            assert {r[0] for r in rows} - {eid, *below} == all_ids(db)
            assert orphans(db) <= before

    @PROPERTY
    @given(forests(), st.integers(0, 7))
    def test_prune(self, scratch: Callable[[], str], rows: Forest, cut: int) -> None:
        """prune() removes the model's trees, whole, and never creates an orphan."""
        if True:
            db = _forest_db(scratch(), rows)
            before = orphans(db)
            gone = model_prune(rows, cut)
            with execlog.open_store(db) as store:
                assert len(gone) == store._backend.prune(BASE_US + cut, dry_run=True)
                assert len(gone) == store._backend.prune(BASE_US + cut)
            assert {r[0] for r in rows} - gone == all_ids(db)
            assert orphans(db) <= before


class TestList:
    @PROPERTY
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b"]),
                st.sampled_from(["success", "error", "running"]),
                st.sampled_from(["c1", "c2"]),
                st.integers(0, 5),
            ),
            max_size=30,
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["a", "b", "z"]),
                "status": st.sampled_from(["success", "error", "running"]),
                "correlation_id": st.sampled_from(["c1", "c2"]),
                "since": st.integers(0, 6),
                "until": st.integers(0, 6),
                "limit": st.integers(0, 8),
                "offset": st.integers(0, 8),
            },
        ),
    )
    def test_filters_combine_like_a_python_model(
        self,
        scratch: Callable[[], str],
        rows: list[tuple[str, str, str, int]],
        filters: dict[str, Any],
    ) -> None:
        """Any combination of filters: newest first, then id descending; since <= t < until."""
        if True:
            db = scratch()
            insert(
                db,
                [
                    node(f"e{i:02}", name=n, status=s, correlation_id=c, started_at=BASE_US + t)
                    for i, (n, s, c, t) in enumerate(rows)
                ],
            )
            kwargs = dict(filters)
            for bound in ("since", "until"):
                if bound in kwargs:
                    kwargs[bound] = at(BASE_US + kwargs[bound])
            with execlog.open_store(db) as store:
                found = ids(store.list(**kwargs))
        match = [
            (t, f"e{i:02}")
            for i, (n, s, c, t) in enumerate(rows)
            if filters.get("name", n) == n
            and filters.get("status", s) == s
            and filters.get("correlation_id", c) == c
            and t >= filters.get("since", t)
            and t < filters.get("until", t + 1)
        ]
        ordered = [eid for _, eid in sorted(match, reverse=True)]
        offset, limit = filters.get("offset", 0), filters.get("limit", 50)
        assert ordered[offset : offset + limit] == found

    def test_pages_cover_everything_once(self, path: Path) -> None:
        """Pages of 7 over 100 rows with many equal start times: no overlap, no gap."""
        insert(path, [node(f"e{i:03}", started_at=BASE_US + i // 10) for i in range(100)])
        with execlog.open_store(path) as store:
            pages = [ids(store.list(limit=7, offset=o)) for o in range(0, 105, 7)]
        flat = [e for page in pages for e in page]
        assert sorted(all_ids(path), reverse=True) == flat

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"name": 5}, TypeError),
            ({"status": b"error"}, TypeError),
            ({"correlation_id": 1}, TypeError),
            ({"since": "2026-01-01"}, TypeError),
            ({"until": 0}, TypeError),
            ({"limit": "5"}, TypeError),
            ({"limit": True}, TypeError),
            ({"limit": -1}, ValueError),
            ({"offset": -1}, ValueError),
            ({"offset": 1.0}, TypeError),
            ({"limit": 2**63}, ValueError),
            ({"limit": 10**20}, ValueError),
            ({"offset": 2**63}, ValueError),
        ],
    )
    def test_bad_arguments(
        self, path: Path, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        """Wrong types raise TypeError, negative counts ValueError, naming the argument."""
        with execlog.open_store(path) as store, pytest.raises(error, match=next(iter(kwargs))):
            store.list(**kwargs)

    def test_largest_counts_work(self, path: Path) -> None:
        """limit and offset up to 2**63 - 1 (SQLite's largest integer) are answered."""
        insert(path, [node("a")])
        with execlog.open_store(path) as store:
            assert ["a"] == ids(store.list(limit=2**63 - 1))
            assert [] == store.list(offset=2**63 - 1)
            assert ["a"] == ids(store.recent(2**63 - 1))
            assert "a" == store.lineage("a", depth=2**63 - 1).execution.execution_id
            with pytest.raises(ValueError, match="limit"):
                store.recent(10**20)

    def test_naive_datetimes_are_utc(self, path: Path) -> None:
        """A naive since/until means UTC."""
        insert(path, [node("a", started_at=BASE_US), node("b", started_at=BASE_US + 5)])
        naive = at(BASE_US + 5).replace(tzinfo=None)
        with execlog.open_store(path) as store:
            assert ["b"] == ids(store.list(since=naive))
            assert ["a"] == ids(store.list(until=naive))


class TestExecutionTimes:
    @pytest.mark.parametrize(
        "us",
        [0, 1, -1, BASE_US + 999_999, 253_402_300_799_999_998, -62_135_596_800_000_000],
        ids=["epoch", "+1us", "-1us", "2026", "year-9999", "year-1"],
    )
    def test_exact_to_the_microsecond(self, path: Path, us: int) -> None:
        """started_at/ended_at and since/until convert exactly, far from the epoch too."""
        insert(path, [node("t", started_at=us, ended_at=us)])
        with execlog.open_store(path) as store:
            ex = store.get("t")
            assert (at(us), at(us)) == (ex.started_at, ex.ended_at)
            assert ["t"] == ids(
                store.list(since=ex.started_at, until=at(us) + dt.timedelta(0, 0, 1))
            )
            assert [] == ids(store.list(until=ex.started_at))


# -- query plans ----------------------------------------------------------------------

EXECUTIONS_ALIASES = {"executions", "e", "p", "c", "r", "m", "f"}

#: Every way a runs search can be answered (see execlog._storage.seeks.plan_search).
SEARCH_PLANS = {
    "names": SearchPlan(("a", "b"), dense_names=False, errors=False, dense_errors=False),
    "dense_names": SearchPlan((), dense_names=True, errors=False, dense_errors=False),
    "errors": SearchPlan((), dense_names=False, errors=True, dense_errors=False),
    "dense_errors": SearchPlan((), dense_names=False, errors=False, dense_errors=True),
    "all": SearchPlan(("a",), dense_names=True, errors=True, dense_errors=True),
}


def plans() -> dict[str, tuple[str, list[Any] | tuple[Any, ...]]]:
    """Every statement the store runs against executions, with sample parameters."""
    cases: dict[str, tuple[str, list[Any] | tuple[Any, ...]]] = {
        "get": (backend.GET, ("x",)),
        "children": (backend.CHILDREN, ("x",)),
        "correlation_chain": (backend.CORRELATION, ("x",)),
        "root": (backend.ROOT, ("x", "x")),
        "siblings": (backend.SIBLINGS, ("p", "x")),
        "root_siblings": (backend.ROOT_SIBLINGS, ("c", "x")),
        "ancestors": (backend.ANCESTORS, ("x", 20)),
        "descendants": (backend.DESCENDANTS, ("x", 20, "x")),
        "delete": (backend.DELETE_TREE, ("x", "x")),
        "prune_candidates": (backend.PRUNE_CANDIDATES, (5,)),
        "prune_keep_running": (backend.PRUNE_KEEP_RUNNING, ()),
        "prune_keep_referenced": (backend.PRUNE_KEEP_REFERENCED, ()),
        "prune_delete": (backend.PRUNE_DELETE, ()),
        "prune_count": (backend.PRUNE_COUNT, ()),
        "stats_name": backend.stats_statement("n", None),
        "stats_since": backend.stats_statement(None, 5),
        "stats_name_since": backend.stats_statement("n", 5),
        "stats_totals": (backend.STATS.totals, ()),
        "stats_totals_of": (backend.STATS.totals_of, ("n",)),
        "stats_running": (backend.STATS.running, ()),
        "stats_untimed": (backend.STATS.untimed, ("n",)),
        "stats_nth": (backend.STATS.nth, ("n", 3)),
        "stats_nth_from_top": (backend.STATS.nth_from_top, ("n", 3)),
        "histogram_name": backend.histogram_statement("n", None),
        "histogram_since": backend.histogram_statement(None, 5),
        "search_names": (backend.MATCHING_NAMES, ("%a%",)),
        "search_name_rows": (backend.NAME_ROWS, ("a", "b", *[None] * 98, 5)),
        "search_error_rows": (backend.ERROR_ROWS, ("%a%", 5)),
        "runs": backend.runs_statement(RunsQuery()),
        "runs_filtered": backend.runs_statement(RunsQuery("n", "error", 1, 9)),
        "run_counts": (backend.RUN_COUNTS, ("c",)),
        "first_start": (backend.FIRST_START, ()),
    }
    for label, plan in SEARCH_PLANS.items():
        query = RunsQuery("n", "error", 1, 9, "x")
        cases[f"runs_search_{label}"] = backend.runs_statement(query, plan)
    for name in (None, "n"):
        for status in (None, "success", "error"):
            for correlation in (None, "c"):
                for since, until in ((None, None), (1, None), (1, 9)):
                    query = ListQuery(name, status, correlation, since, until)
                    label = f"list-{name}-{status}-{correlation}-{since}-{until}"
                    cases[label] = backend.list_statement(query)
    return cases


class TestQueryPlans:
    @pytest.fixture
    def conn(self, sqlite_path: Path) -> Any:
        conn = sqlite3.connect(sqlite_path)
        conn.execute(backend.PRUNE_CREATE)
        yield conn
        conn.close()

    @pytest.mark.parametrize("label", list(plans()))
    def test_every_statement_uses_an_index(self, conn: sqlite3.Connection, label: str) -> None:
        """No statement scans the executions table without an index."""
        sql, params = plans()[label]
        steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert steps, label
        for step in steps:
            match = re.match(r"(SCAN|SEARCH) (\S+)", step)
            if match and match.group(2) in EXECUTIONS_ALIASES:
                assert "INDEX" in step or "PRIMARY KEY" in step, (label, steps)

    @pytest.mark.parametrize(
        ("label", "index"),
        [
            ("get", "sqlite_autoindex_executions_1"),
            ("children", "executions_parent"),
            ("siblings", "executions_parent"),
            ("descendants", "executions_parent"),
            ("delete", "executions_parent"),
            ("correlation_chain", "executions_correlation"),
            ("root_siblings", "executions_correlation"),
            ("list-n-error-None-None-None", "executions_name (name=?)"),
            ("list-n-None-None-1-9", "executions_name (name=? AND started_at>? AND started_at<?)"),
            ("list-None-error-None-None-None", "executions_status (status=?)"),
            ("list-None-error-None-1-None", "executions_status (status=? AND started_at>?)"),
            ("list-n-error-c-None-None", "executions_correlation (correlation_id=?)"),
            ("list-None-None-None-1-9", "executions_started (started_at>? AND started_at<?)"),
            ("list-None-None-None-None-None", "SCAN executions USING INDEX executions_started"),
            ("stats_name", "COVERING INDEX executions_duration (name=?)"),
            ("stats_name_since", "COVERING INDEX executions_name (name=? AND started_at>?)"),
            ("stats_totals", "SCAN executions USING COVERING INDEX executions_duration"),
            ("stats_totals_of", "COVERING INDEX executions_duration (name=?)"),
            ("stats_running", "executions_running"),
            ("stats_untimed", "COVERING INDEX executions_duration (name=? AND duration_ms=?)"),
            ("stats_nth", "COVERING INDEX executions_duration (name=? AND duration_ms>?)"),
            ("stats_nth_from_top", "COVERING INDEX executions_duration (name=? AND duration_ms>?)"),
            ("histogram_since", "executions_started (started_at>?)"),
            ("search_names", "COVERING INDEX executions_name (name>?)"),
            ("search_name_rows", "COVERING INDEX executions_name (name=?)"),
            ("search_error_rows", "SCAN executions USING COVERING INDEX executions_errors"),
            ("runs", "SCAN r USING INDEX executions_roots"),
            ("runs_filtered", "executions_roots (started_at>? AND started_at<?)"),
            ("run_counts", "executions_correlation (correlation_id=?)"),
            ("first_start", "SEARCH executions USING COVERING INDEX executions_started"),
            ("runs_search_names", "executions_roots (started_at>? AND started_at<?)"),
            ("runs_search_names", "SUBQUERY 1 | SEARCH executions USING INDEX executions_name"),
            (
                "runs_search_dense_names",
                "SEARCH m USING INDEX executions_correlation (correlation_id=?)",
            ),
            ("runs_search_errors", "SCAN executions USING COVERING INDEX executions_errors"),
            (
                "runs_search_dense_errors",
                "SEARCH f USING COVERING INDEX executions_errors (correlation_id=?",
            ),
            ("runs_search_all", "executions_roots (started_at>? AND started_at<?)"),
            ("stats_since", "executions_started (started_at>?)"),
            ("prune_delete", "executions_correlation (correlation_id=?)"),
        ],
    )
    def test_the_intended_index(self, conn: sqlite3.Connection, label: str, index: str) -> None:
        """The index each query is meant to use is the one SQLite picks (no ANALYZE needed)."""
        sql, params = plans()[label]
        steps = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert index in steps, steps


class TestMigration:
    def test_version_1_database_gains_the_indexes_and_keeps_rows(self, tmp_path: Path) -> None:
        """A database at schema 1 (with rows) is upgraded to the latest in place."""
        db = tmp_path / "v1.db"
        conn = sqlite3.connect(db)
        conn.executescript(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TEXT NOT NULL);"
            + MIGRATIONS[0].sql
            + ";INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01T00:00:00Z');"
        )
        conn.close()
        insert(db, [node("a", name="load"), node("b", "a", name="load", status="error")])
        with execlog.open_store(db) as store:
            assert ["b"] == ids(store.list(name="load", status="error"))
        assert [(m.version,) for m in MIGRATIONS] == raw(
            db, "SELECT version FROM schema_migrations ORDER BY version"
        )
        names = {r[0] for r in raw(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"executions_name", "executions_status"} <= names
        assert {"a", "b"} == all_ids(db)


# -- readers and removals while another process records ---------------------------------

_WRITER = """
import os, sys, execlog
db, stop = sys.argv[1], sys.argv[2]
execlog.configure(db=db, batch_size=64, flush_interval=0.01)
jobs = 0
while not os.path.exists(stop) and jobs < 20_000:
    with execlog.execution("job", kind="workflow"):
        for i in range(4):
            with execlog.execution("step", inputs={"i": i}):
                with execlog.execution("leaf"):
                    pass
    jobs += 1
    if jobs == 20:
        assert execlog.flush(timeout=10)
        print("ready", flush=True)
assert execlog.flush(timeout=30)
print(jobs, flush=True)
"""


class _Reader(threading.Thread):
    """Queries the newest jobs in a loop until ``stop`` exists, checking what it reads."""

    def __init__(self, db: Path, stop: Path, deleting: set[str]) -> None:
        super().__init__()
        self.db, self.stop, self.deleting = db, stop, deleting
        self.errors: list[BaseException] = []
        self.rounds = 0

    def run(self) -> None:
        try:
            with execlog.open_store(self.db) as store:
                while not self.stop.exists():
                    for job in store.list(name="job", limit=3):
                        self.check(store, job)
                    names = {s.name for s in store.stats(since=at(days_ago(1)))}
                    assert names <= {"job", "step", "leaf"}
                    self.rounds += 1
        except BaseException as exc:
            self.errors.append(exc)

    def check(self, store: execlog.Store, job: execlog.Execution) -> None:
        """A consistent tree; a job may vanish only if the main thread started deleting it."""
        try:
            lineage = store.lineage(job.execution_id)
        except KeyError:
            assert job.execution_id in self.deleting
            return
        family = {job.execution_id} | set(ids(lineage.descendants))
        assert [] == ids(lineage.ancestors)
        for d in lineage.descendants:
            assert d.parent_execution_id in family
        chain = store.correlation_chain(job.correlation_id)
        root = store.root(job.correlation_id)
        if not chain or root is None:
            assert job.execution_id in self.deleting
            return
        assert job.execution_id == chain[0].execution_id == root.execution_id


@pytest.mark.timeout(60)
class TestWhileAnotherProcessWrites:
    def test_queries_and_removals_work_while_recording(self, path: Path, tmp_path: Path) -> None:
        """Every query answers consistently, and delete/prune succeed, during writes."""
        insert(
            path,
            [
                node("ancient", name="old", started_at=days_ago(100)),
                *[node(f"ancient-{i}", "ancient", started_at=days_ago(100)) for i in range(50)],
            ],
        )
        stop = tmp_path / "stop"
        writer = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WRITER), str(path), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        deleting: set[str] = set()  # added to before each delete starts
        reader = _Reader(path, stop, deleting)
        try:
            assert "ready" == writer.stdout.readline().strip()
            reader.start()
            with execlog.open_store(path) as store:
                assert 51 == store.prune()
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    for job in store.list(name="job", status="success", offset=5, limit=1):
                        if job.execution_id not in deleting:
                            deleting.add(job.execution_id)
                            assert 9 == store.delete(job.execution_id)
                    time.sleep(0.02)
        finally:
            stop.touch()
            out, err = writer.communicate(timeout=40)
            if reader.ident is not None:
                reader.join(timeout=20)
        assert 0 == writer.returncode, err
        assert [] == reader.errors
        assert reader.rounds > 0
        assert len(deleting) > 0
        assert set() == orphans(path)
        jobs = int(out.split()[-1])
        assert 9 * (jobs - len(deleting)) == len(all_ids(path))


class TestOpenStore:
    """open_store() fails fast on a database that does not exist, unless asked to create it."""

    @pytest.mark.parametrize("spelling", ["{path}", "sqlite:///{path}"])
    def test_missing_database_raises_and_creates_nothing(
        self, tmp_path: Path, spelling: str
    ) -> None:
        """A mistyped path is an error naming it, not an empty store; no file appears."""
        missing = tmp_path / "missing.db"

        with pytest.raises(execlog.StoreNotFoundError, match=r"missing\.db") as caught:
            execlog.open_store(spelling.format(path=missing))

        assert isinstance(caught.value, FileNotFoundError)
        assert isinstance(caught.value, execlog.StoreError)
        assert spelling.format(path=missing) == caught.value.filename
        assert "create=True" in str(caught.value)
        assert not str(caught.value).startswith("[Errno")
        assert [] == list(tmp_path.iterdir())

    def test_missing_default_database_raises(self, tmp_path: Path) -> None:
        """Without an argument, a missing ./execlog.db is an error too."""
        with pytest.raises(FileNotFoundError, match=r"execlog\.db"):
            execlog.open_store()

        assert not (tmp_path / "execlog.db").exists()

    def test_missing_directory_raises(self, tmp_path: Path) -> None:
        """A path in a directory that does not exist is missing too."""
        with pytest.raises(execlog.StoreNotFoundError):
            execlog.open_store(tmp_path / "no-such-dir" / "runs.db")

    def test_create_true_creates_an_empty_store(self, tmp_path: Path) -> None:
        """create=True creates and migrates a new database."""
        with execlog.open_store(tmp_path / "new.db", create=True) as store:
            assert [] == store.recent()

        with execlog.open_store(tmp_path / "new.db") as store:  # exists now
            assert [] == store.recent()

    def test_memory_database_needs_no_create(self) -> None:
        """:memory: is never missing."""
        with execlog.open_store(":memory:") as store:
            assert isinstance(store.recent(), list)

    def test_database_the_writer_created_opens(self, tmp_path: Path) -> None:
        """The usual case: read what the program recorded."""
        execlog.configure(db=str(tmp_path / "runs.db"))
        with execlog.execution("job"):
            pass
        assert execlog.flush(timeout=10)

        with execlog.open_store(tmp_path / "runs.db") as store:
            assert ["job"] == [e.name for e in store.recent()]

    @pytest.mark.parametrize(
        ("bad", "error"),
        [(b"runs.db", TypeError), (3, TypeError), ("", ValueError), (Path(), execlog.StoreError)],
    )
    def test_bad_path(self, bad: Any, error: type[Exception]) -> None:
        """Not a str or os.PathLike, empty, or a directory: an error naming what is wrong."""
        with pytest.raises(error, match=r"db|directory"):
            execlog.open_store(bad)


A = "01a23d10-9a62-73b9-99cc-1eb000000001"
B = "01a23d10-9a62-73b9-99cc-1eb000000002"
C = "01a23d10-9a7f-7000-8000-000000000000"
D = "01b00000-0000-7000-8000-000000000000"


class TestIdPrefixes:
    """resolve_id(), resolve_correlation_id() and short_ids(): ids that fit on a terminal."""

    @pytest.fixture
    def prefixed(self, path: Path) -> Path:
        insert(path, [node(A), node(B, A), node(C), node(D), node("short"), node("short-er")])
        return path

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (A, A),
            ("01a23d10-9a62-73b9-99cc-1eb000000002", B),
            ("01a23d10-9a7", C),
            ("01a23d10-9a7f-7000-8000-00000000000", C),
            ("01b00000", D),
            ("short", "short"),  # an exact id wins over the longer id it begins
            ("short-er", "short-er"),
        ],
    )
    def test_resolves_an_id_or_a_unique_prefix(
        self, prefixed: Path, given: str, expected: str
    ) -> None:
        """An exact id, or a prefix of at least 8 characters that one id starts with."""
        with execlog.open_store(prefixed) as store:
            assert expected == store.resolve_id(given)

    @pytest.mark.parametrize(
        "given", ["01b0000", "01b", "", "short-e", "nope-nope", "01a23d10-9a62-73b9-x"]
    )
    def test_unknown_or_too_short_is_a_key_error(self, prefixed: Path, given: str) -> None:
        """Fewer than 8 characters never match (even when unique); unknown ids are KeyError."""
        with execlog.open_store(prefixed) as store, pytest.raises(KeyError):
            store.resolve_id(given)

    def test_ambiguous_prefix_lists_the_candidates(self, prefixed: Path) -> None:
        """Several matches: AmbiguousIdError (a LookupError) with the matching ids, sorted."""
        with execlog.open_store(prefixed) as store:
            with pytest.raises(execlog.AmbiguousIdError) as caught:
                store.resolve_id("01a23d10-9a6")
            with pytest.raises(LookupError):
                store.resolve_id("01a23d10")
        assert (A, B) == caught.value.candidates
        assert not caught.value.more
        assert A in str(caught.value)
        assert "01a23d10-9a6" in str(caught.value)

    def test_ambiguous_prefix_of_many_lists_ten(self, path: Path) -> None:
        """At most MAX_CANDIDATES are listed, and ``more`` says there are others."""
        insert(path, [node(f"0123456789-{i:02d}") for i in range(25)])
        with (
            execlog.open_store(path) as store,
            pytest.raises(execlog.AmbiguousIdError) as caught,
        ):
            store.resolve_id("0123456789")
        assert [f"0123456789-{i:02d}" for i in range(10)] == list(caught.value.candidates)
        assert caught.value.more

    def test_correlation_ids(self, path: Path) -> None:
        """Correlation ids resolve the same way, each correlation once however many rows."""
        insert(
            path,
            [
                node("r1", correlation_id="corr-aaaaaaaa-1"),
                node("c1", "r1"),
                node("c2", "r1"),
                node("r2", correlation_id="corr-aaaaaaaa-2"),
                node("r3", correlation_id="corr-bbbbbbbb"),
            ],
        )
        with execlog.open_store(path) as store:
            assert "corr-bbbbbbbb" == store.resolve_correlation_id("corr-bbb")
            assert "corr-aaaaaaaa-1" == store.resolve_correlation_id("corr-aaaaaaaa-1")
            with pytest.raises(execlog.AmbiguousIdError) as caught:
                store.resolve_correlation_id("corr-aaaaaaaa")
            with pytest.raises(KeyError):
                store.resolve_correlation_id("corr-ccc")
        assert ("corr-aaaaaaaa-1", "corr-aaaaaaaa-2") == caught.value.candidates

    def test_short_ids(self, prefixed: Path) -> None:
        """The shortest unique prefix, at least 8 characters, never ending in '-'."""
        with execlog.open_store(prefixed) as store:
            short = store.short_ids([A, B, C, D, "short"])
        assert {
            A: A,  # B differs only in the last character
            B: B,
            C: "01a23d10-9a7",
            D: "01b00000",
            "short": "short",  # shorter than 8: the whole id
        } == short

    def test_short_id_skips_a_trailing_dash(self, path: Path) -> None:
        """A prefix that would end in '-' takes the next character too."""
        insert(path, [node("01a23d10-1111"), node("01a23d10a2222")])
        with execlog.open_store(path) as store:
            assert {"01a23d10-1111": "01a23d10-1"} == store.short_ids(["01a23d10-1111"])

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.sets(
            st.text(alphabet="0123456789abcdef-", min_size=1, max_size=14), min_size=1, max_size=30
        )
    )
    def test_short_ids_resolve_back(self, ids_: set[str]) -> None:
        """Whatever the ids, each short id resolves to the id it was made from."""
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "p.db"
            execlog.open_store(db, create=True).close()
            insert(db, [node(i) for i in sorted(ids_)])
            with execlog.open_store(db) as store:
                for full, short in store.short_ids(ids_).items():
                    assert full.startswith(short)
                    assert len(short) >= min(8, len(full))
                    assert full == store.resolve_id(short)

    def test_recorded_ids(self, db: str) -> None:
        """UUIDv7 ids recorded in a burst: short ids resolve back and are shorter."""
        for _ in range(50):
            with execlog.execution("burst"):
                pass
        assert execlog.flush(timeout=10)
        with execlog.open_store(db) as store:
            found = store.recent(50)
            short = store.short_ids(e.execution_id for e in found)
            for e in found:
                assert e.execution_id == store.resolve_id(short[e.execution_id])
        assert min(len(s) for s in short.values()) < 36

    @pytest.mark.parametrize("bad", [None, 5, b"01a23d10"])
    def test_bad_type(self, path: Path, bad: Any) -> None:
        """A prefix that is not a str is a TypeError."""
        with execlog.open_store(path) as store, pytest.raises(TypeError):
            store.resolve_id(bad)

    def test_lookups_use_indexes(self, sqlite_path: Path) -> None:
        """Prefix lookup and neighbours are index searches, never table scans (PostgreSQL's
        plans: tests/test_postgres.py)."""
        conn = sqlite3.connect(sqlite_path)
        try:
            for sql, params in [
                (backend.IDS_FROM, ("x", 5)),
                (backend.CORRELATIONS_FROM, ("x", 5)),
                (backend.ID_BEFORE, ("x",)),
                (backend.ID_AFTER, ("x",)),
            ]:
                steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                assert all("USING COVERING INDEX" in s for s in steps), steps
        finally:
            conn.close()
