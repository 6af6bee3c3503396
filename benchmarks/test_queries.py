"""Query speed of ``execlog.open_store`` on a large history (1,000,000 executions by default).

Run with ``python -m pytest benchmarks/test_queries.py -q``. The database is generated once (about
half a minute) and cached in the temporary directory, keyed by its size, the generator version
and the schema version, so later runs start at once. ``EXECLOG_BENCH_ROWS`` changes the size;
with ``--benchmark-disable`` (the CI smoke run) a 20,000-row database is used instead.

The history is realistic in shape rather than in content: correlation trees of 10 to 50
executions with a few levels of nesting, a handful of deep chains (800 levels) and wide fan-outs
(2,000 children), retries whose explicit parent is a failed execution of an earlier tree (in
the same correlation or in another one), about 40 names with a skewed popularity, mostly
``success`` with some ``error``/``partial``/``cancelled``/``abandoned`` and a few ``running``,
small JSON payloads and tracebacks on errors. Nothing here asserts on timing, and the database
is never analysed (``ANALYZE``), as a user's would not be.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from execlog._storage import COLUMNS, open_backend
from execlog._storage.migrations import LATEST

if TYPE_CHECKING:
    from collections.abc import Iterator

GENERATOR_VERSION = 1
DEFAULT_ROWS = 1_000_000
SMOKE_ROWS = 20_000
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
SPAN_US = 90 * 86_400 * 1_000_000  # the history covers 90 days
DEEP_CHAIN = 800
WIDE_FANOUT = 2_000

WORKFLOWS = ["nightly-etl", "hourly-sync", "agent-run", "backfill", "report", "ingest-api"]
FUNCTIONS = [
    "load",
    "transform",
    "validate",
    "publish",
    "fetch_region",
    "summarise",
    "parse",
    "enrich",
    "dedupe",
    "score",
    "embed",
    "call_llm",
    "tool:search",
    "tool:fetch",
    "tool:python",
    "write_parquet",
    "read_csv",
    "upload",
    "download",
    "compress",
    "notify",
    "retry-wrapper",
    "plan",
    "rank",
    "join",
    "aggregate",
    "export",
    "checkpoint",
    "cleanup",
    "lock",
    "unlock",
    "render",
    "http.get",
    "http.post",
]
#: Zipf-like popularity: the first names are much more common than the last ones.
FUNCTION_WEIGHTS = list(
    itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(FUNCTIONS)))
)
STATUSES = ["success", "error", "partial", "cancelled", "abandoned"]
STATUS_WEIGHTS = list(itertools.accumulate([90.5, 6.0, 2.0, 1.0, 0.5]))
HOSTS = [f"worker-{i}" for i in range(8)]
STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/pipeline.py", line 120, in run\n    rows = step(rows)\n'
    '  File "/srv/app/steps.py", line 48, in transform\n    raise ValueError(msg)\n'
    "ValueError: column 'amount' is not numeric\n"
)


@dataclass
class Sample:
    """Ids picked while generating, for the benchmarks to query."""

    roots: list[str] = field(default_factory=list)
    middles: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    correlations: list[str] = field(default_factory=list)
    deep_leaf: str = ""
    deep_middle: str = ""
    wide_root: str = ""


class _Ids:
    """UUIDv7-shaped, time-ordered, unique ids (same layout as execlog's, much cheaper)."""

    def __init__(self, rng: random.Random) -> None:
        self._count = itertools.count(rng.randrange(1 << 16))

    def __call__(self, us: int) -> str:
        ms, sub = divmod(us, 1000)
        head = f"{ms:012x}"
        n = next(self._count)
        return (
            f"{head[:8]}-{head[8:]}-7{sub * 4:03x}-8{n >> 48 & 0xFFF:03x}-{n & 0xFFFFFFFFFFFF:012x}"
        )


class _Generator:
    """Makes the rows of :func:`generate`; one random stream, so the same seed gives the same
    database and the same sample."""

    def __init__(self, total: int, seed: int) -> None:
        self.total = total
        self.rng = random.Random(seed)
        self.new_id = _Ids(self.rng)
        self.sample = Sample()
        self.failed: list[tuple[str, str]] = []  # (id, correlation) of recent errors

    def row(
        self,
        ids: tuple[str, str | None, str],
        name: str,
        kind: str,
        started: int,
        trigger: str,
        status: str | None,
    ) -> tuple[Any, ...]:
        """One row; ``ids`` is (execution id, parent id, correlation id)."""
        rng = self.rng
        if status is None:
            status = rng.choices(STATUSES, cum_weights=STATUS_WEIGHTS)[0]
        duration = rng.lognormvariate(2.5, 1.6) if status not in {"abandoned", "running"} else None
        error = status == "error"
        day = started // 86_400_000_000
        return (
            ids[0],
            name,
            kind,
            status,
            started,
            None if duration is None else started + int(duration * 1000),
            duration,
            f'{{"path":"s3://lake/day={day}/part-{rng.randrange(999):03}.csv","limit":{day % 97}}}',
            None if error else f'{{"rows":{rng.randrange(100_000)},"ok":true}}',
            "ValueError" if error else None,
            "column 'amount' is not numeric" if error else None,
            STACK if error else None,
            ids[1],
            ids[2],
            trigger,
            None,
            '{"team":"data","env":"prod"}',
            rng.randrange(1000, 60_000),
            rng.randrange(1 << 40),
            HOSTS[rng.randrange(len(HOSTS))],
        )

    def tree(
        self, started: int, size: int, shape: str, status: str | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """One correlation: a workflow root and ``size - 1`` functions below it."""
        rng = self.rng
        root = self.new_id(started)
        parent, corr, trigger = None, root, "scheduled"
        if self.failed and rng.random() < 0.03:  # a retry of an earlier failure
            parent, other = self.failed[rng.randrange(len(self.failed))]
            trigger = "retry"
            corr = other if rng.random() < 0.5 else corr
        yield self.row(
            (root, parent, corr), rng.choice(WORKFLOWS), "workflow", started, trigger, status
        )
        nodes = [(root, started, 0)]
        for i in range(1, size):
            if shape == "deep":
                parent_id, parent_start, level = nodes[-1]
            elif shape == "wide":
                parent_id, parent_start, level = nodes[0]
            else:  # mostly shallow, a few levels deep
                parent_id, parent_start, level = nodes[int(i * rng.random() ** 2)]
            start = parent_start + rng.randrange(1, 2_000_000)
            eid = self.new_id(start)
            name = rng.choices(FUNCTIONS, cum_weights=FUNCTION_WEIGHTS)[0]
            row = self.row((eid, parent_id, corr), name, "function", start, "child", status)
            if row[3] == "error":
                self.failed = [*self.failed[-199:], (eid, corr)]
            nodes.append((eid, start, level + 1))
            yield row
        self.remember(root, corr, shape, nodes)

    def remember(self, root: str, corr: str, shape: str, nodes: list[tuple[str, int, int]]) -> None:
        sample = self.sample
        if shape == "deep":
            sample.deep_leaf = nodes[-1][0]
            sample.deep_middle = nodes[len(nodes) // 2][0]
        elif shape == "wide":
            sample.wide_root = root
        elif len(sample.roots) < 2_000 and self.rng.random() < 0.2:
            sample.roots.append(root)
            sample.correlations.append(corr)
            deepest = max(nodes, key=lambda n: n[2])
            middle = [n for n in nodes if 0 < n[2] < deepest[2]]
            if middle:
                sample.middles.append(middle[self.rng.randrange(len(middle))][0])
            sample.leaves.append(deepest[0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Trees one after the other over :data:`SPAN_US`, with the special shapes spread out."""
        total, rng = self.total, self.rng
        produced = 0
        specials = ["deep"] * 3 + ["wide"] * 3 if total >= 100_000 else ["deep", "wide"]
        special_at = {int(total * (k + 1) / (len(specials) + 1)): s for k, s in enumerate(specials)}
        step = SPAN_US / (total / 30)
        started = float(BASE_US)
        while produced < total:
            shape, size = "tree", rng.randint(10, 50)
            for mark in [m for m in special_at if m <= produced]:
                shape = special_at.pop(mark)
                size = DEEP_CHAIN if shape == "deep" else WIDE_FANOUT + 1
            for row in self.tree(int(started), min(size, total - produced), shape):
                yield row
                produced += 1
            started += rng.expovariate(1 / step)
        for _ in range(3):  # a few live trees at the very end of the history
            yield from self.tree(int(started), 5, "tree", "running")


def generate(total: int, seed: int = 3) -> tuple[Iterator[tuple[Any, ...]], Sample]:
    """Rows in :data:`execlog._storage.COLUMNS` order (lazily), and ids worth querying.

    The sample is complete once the rows have all been consumed.
    """
    generator = _Generator(total, seed)
    return generator.rows(), generator.sample


def build(path: Path, total: int) -> Sample:
    """Create ``path`` with :func:`execlog.open_store` and fill it with ``total`` rows."""
    execlog.open_store(path, create=True).close()
    rows, sample = generate(total)
    insert = (
        f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
    )
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        while True:
            chunk = list(itertools.islice(rows, 100_000))
            if not chunk:
                break
            conn.execute("BEGIN")
            conn.executemany(insert, chunk)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sample


def _size(config: pytest.Config) -> int:
    if "EXECLOG_BENCH_ROWS" in os.environ:
        return int(os.environ["EXECLOG_BENCH_ROWS"])
    if config.getoption("benchmark_disable", default=False):
        return SMOKE_ROWS
    return DEFAULT_ROWS


@dataclass
class History:
    """The cached database and the ids picked while generating it."""

    path: Path
    rows: int
    sample: Sample


@pytest.fixture(scope="session")
def history(request: pytest.FixtureRequest) -> History:
    """The large database: built on first use, then reused from the temporary directory."""
    total = _size(request.config)
    folder = Path(tempfile.gettempdir()) / "execlog-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"queries-{total}-g{GENERATOR_VERSION}-s{LATEST}.db"
    sample_file = path.with_suffix(".json")
    if not (path.exists() and sample_file.exists()):
        partial = path.with_suffix(".partial")
        for leftover in folder.glob(f"{partial.name}*"):
            leftover.unlink()
        start = time.perf_counter()
        sample = build(partial, total)
        partial.rename(path)
        sample_file.write_text(json.dumps(asdict(sample)))
        print(f"\nbuilt {path} ({total:,} rows) in {time.perf_counter() - start:.1f} s")
    return History(path, total, Sample(**json.loads(sample_file.read_text())))


def build_postgres(url: str, total: int) -> None:
    """The same rows as :func:`build`, COPYed into a PostgreSQL schema, then ``ANALYZE``
    (which autovacuum does on a server after a bulk load: a user's database is analysed)."""
    import psycopg

    execlog.open_store(url).close()
    rows, _ = generate(total)
    backend = open_backend(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                chunk = list(itertools.islice(rows, 100_000))
                if not chunk:
                    break
                backend._ensure_partitions(chunk)  # type: ignore[attr-defined]
                with conn.cursor() as cur, cur.copy(POSTGRES_COPY) as copy:
                    for row in chunk:
                        copy.write_row(row)
            conn.execute("ANALYZE executions")
    finally:
        backend.close()


POSTGRES_COPY = f"COPY executions ({', '.join(COLUMNS)}) FROM STDIN"


@pytest.fixture(scope="session")
def postgres_history(history: History) -> Iterator[str]:
    """The same history in a throw-away PostgreSQL cluster (built anew for each session)."""
    from pgcluster import start_cluster

    cluster = start_cluster()
    try:
        url = cluster.url(cluster.new_schema())
        start = time.perf_counter()
        build_postgres(url, history.rows)
        print(f"\nbuilt PostgreSQL ({history.rows:,} rows) in {time.perf_counter() - start:.1f} s")
        yield url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, history: History) -> Iterator[execlog.Store]:
    """The history on each backend in turn: one SQLite file, one PostgreSQL database."""
    target = (
        request.getfixturevalue("postgres_history")
        if request.param == "postgresql"
        else history.path
    )
    with execlog.open_store(target) as opened:
        yield opened


def _cycle(items: list[str]) -> Iterator[str]:
    """Different ids round after round, so one cached page does not answer every query."""
    return itertools.cycle(items)


# -- lookups --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="lookup")
def test_get(benchmark: Any, store: execlog.Store, history: History) -> None:
    ids = _cycle(history.sample.middles + history.sample.leaves)
    assert benchmark(lambda: store.get(next(ids))) is not None


@pytest.mark.benchmark(group="lookup")
def test_children(benchmark: Any, store: execlog.Store, history: History) -> None:
    roots = _cycle(history.sample.roots)
    assert benchmark(lambda: store.children(next(roots)))


@pytest.mark.benchmark(group="lookup")
def test_children_of_a_2000_wide_fan_out(
    benchmark: Any, store: execlog.Store, history: History
) -> None:
    assert len(benchmark(store.children, history.sample.wide_root)) >= WIDE_FANOUT


@pytest.mark.benchmark(group="lookup")
def test_correlation_chain(benchmark: Any, store: execlog.Store, history: History) -> None:
    correlations = _cycle(history.sample.correlations)
    assert benchmark(lambda: store.correlation_chain(next(correlations)))


@pytest.mark.benchmark(group="lookup")
def test_root(benchmark: Any, store: execlog.Store, history: History) -> None:
    correlations = _cycle(history.sample.correlations)
    assert benchmark(lambda: store.root(next(correlations))) is not None


@pytest.mark.benchmark(group="lookup")
def test_resolve_id_from_a_short_prefix(
    benchmark: Any, store: execlog.Store, history: History
) -> None:
    """What ``execlog show PREFIX`` adds: the id a unique short prefix names."""
    ids = history.sample.middles + history.sample.leaves
    short = store.short_ids(ids)
    prefixes = _cycle([short[i] for i in ids])
    assert benchmark(lambda: store.resolve_id(next(prefixes)))


@pytest.mark.benchmark(group="lookup")
def test_short_ids_of_a_page(benchmark: Any, store: execlog.Store) -> None:
    """What ``execlog list`` adds on a terminal: short ids for a page of 50."""
    page = [e.execution_id for e in store.list(limit=50)]
    assert len(benchmark(store.short_ids, page)) == len(page)


# -- lineage --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="lineage")
def test_lineage_of_a_middle_execution(
    benchmark: Any, store: execlog.Store, history: History
) -> None:
    middles = _cycle(history.sample.middles)
    assert benchmark(lambda: store.lineage(next(middles))).ancestors


@pytest.mark.benchmark(group="lineage")
def test_lineage_of_a_root(benchmark: Any, store: execlog.Store, history: History) -> None:
    roots = _cycle(history.sample.roots)
    assert benchmark(lambda: store.lineage(next(roots))).descendants


@pytest.mark.benchmark(group="lineage")
def test_lineage_in_an_800_deep_chain(
    benchmark: Any, store: execlog.Store, history: History
) -> None:
    found = benchmark(store.lineage, history.sample.deep_middle, depth=20)
    assert len(found.ancestors) == len(found.descendants) == 20


@pytest.mark.benchmark(group="lineage")
def test_lineage_of_a_2000_wide_root(
    benchmark: Any, store: execlog.Store, history: History
) -> None:
    assert len(benchmark(store.lineage, history.sample.wide_root).descendants) >= WIDE_FANOUT


# -- list -----------------------------------------------------------------------------------

LISTS = {
    "newest": {},
    "name": {"name": "load"},
    "name_status": {"name": "load", "status": "error"},
    "rare_name_rare_status": {"name": "render", "status": "abandoned"},
    "absent_name": {"name": "no-such-name"},
    "status_error": {"status": "error"},
    "status_running": {"status": "running"},
    "name_window": {
        "name": "transform",
        "since": BASE_US + SPAN_US // 3,
        "until": BASE_US + SPAN_US // 2,
    },
    "offset_1000": {"name": "load", "offset": 1000},
}


@pytest.mark.benchmark(group="list")
@pytest.mark.parametrize("case", list(LISTS))
def test_list_page(benchmark: Any, store: execlog.Store, case: str) -> None:
    kwargs: dict[str, Any] = dict(LISTS[case])
    for bound in ("since", "until"):
        if bound in kwargs:
            kwargs[bound] = EPOCH + dt.timedelta(microseconds=kwargs[bound])
    found = benchmark(store.list, limit=50, **kwargs)
    assert len(found) <= 50


# -- stats ----------------------------------------------------------------------------------


@pytest.mark.benchmark(group="stats")
def test_stats_of_one_name(benchmark: Any, store: execlog.Store) -> None:
    assert benchmark(store.stats, name="unlock")


@pytest.mark.benchmark(group="stats")
def test_stats_of_the_last_day(benchmark: Any, store: execlog.Store) -> None:
    last = store.recent(1)[0].started_at
    assert benchmark(store.stats, since=last - dt.timedelta(days=1))


@pytest.mark.benchmark(group="stats")
def test_stats_of_everything(benchmark: Any, store: execlog.Store) -> None:
    assert benchmark.pedantic(store.stats, rounds=3, iterations=1)


@pytest.mark.benchmark(group="stats")
def test_stats_of_a_popular_name(benchmark: Any, store: execlog.Store) -> None:
    """About 100,000 executions, the whole history."""
    assert benchmark(store.stats, name="transform")


# -- runs ------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="runs")
@pytest.mark.parametrize(
    "search",
    [None, "not numeric", "load", "tool:p", "no such text"],
    ids=["newest", "error_text", "name", "rarer_name", "nowhere"],
)
def test_runs(benchmark: Any, store: execlog.Store, search: str | None) -> None:
    """A page of 50 runs over the whole history, with or without a text search."""
    found = benchmark(store.runs, search=search, limit=50)
    assert bool(found) == (search != "no such text")


# -- removing (on a copy of the database) ---------------------------------------------------


@pytest.fixture(scope="module")
def scratch(history: History, tmp_path_factory: pytest.TempPathFactory) -> Iterator[execlog.Store]:
    copy = tmp_path_factory.mktemp("queries") / "scratch.db"
    shutil.copyfile(history.path, copy)
    with execlog.open_store(copy) as opened:
        yield opened


@pytest.mark.benchmark(group="remove")
def test_delete_a_tree(benchmark: Any, scratch: execlog.Store, history: History) -> None:
    roots = iter(history.sample.roots)
    result = benchmark.pedantic(
        scratch.delete, setup=lambda: ((next(roots),), {}), rounds=200, iterations=1
    )
    assert result >= 0


@pytest.mark.benchmark(group="remove")
def test_prune_half_the_history(benchmark: Any, scratch: execlog.Store, history: History) -> None:
    middle = EPOCH + dt.timedelta(microseconds=BASE_US + SPAN_US // 2)
    older_than = dt.datetime.now(dt.timezone.utc) - middle
    removed = benchmark.pedantic(scratch.prune, args=(older_than,), rounds=1, iterations=1)
    benchmark.extra_info["removed"] = removed
    assert removed > 0
