"""PostgreSQL as the store: same answers as SQLite, faults, many processes, schema, plans.

Every test runs against the real server of ``pg_cluster`` (tests/pgcluster.py); the store
and query suite itself runs on both backends in tests/test_store.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import raw
from execlog._recorder import RECORDER
from execlog._storage import COLUMNS, ListQuery, RunsQuery, open_backend
from execlog._storage import postgres as pg
from execlog._storage import postgres_schema as schema
from execlog.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    from pgcluster import Cluster

UTC = dt.timezone.utc


def count(db: str, where: str = "TRUE") -> int:
    return int(raw(db, f"SELECT COUNT(*) FROM executions WHERE {where}")[0][0])


def record_workflow() -> tuple[str, str]:
    """A small workflow with nesting, an error, a retry and outputs; (root id, retry id)."""

    @execlog.traced_execution
    def load(path: str, limit: int = 10) -> list[int]:
        return list(range(limit))

    @execlog.traced_execution(kind="node", tags={"team": "data"})
    def transform(rows: list[int]) -> int:
        if len(rows) > 5:
            raise ValueError("too many rows")
        return sum(rows)

    with execlog.execution("nightly", kind="workflow", inputs={"day": "2026-11-21"}) as root:
        rows = load("a.csv", limit=3)
        transform(rows)
        with pytest.raises(ValueError, match="too many"):
            transform(load("b.csv"))
    with execlog.execution("retry", parent=root.execution_id, trigger_kind="retry") as retry:
        retry.tag(attempt=2)
        retry.set_status("partial")
    assert execlog.flush(timeout=10)
    return root.execution_id, retry.execution_id


class TestSameAnswersAsSQLite:
    def test_every_cli_command_prints_the_same(
        self, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same rows in both databases: every reading command prints the same bytes."""
        sqlite_db = str(tmp_path / "runs.db")
        execlog.configure(db=sqlite_db)
        root, retry = record_workflow()
        execlog.shutdown()
        copied = raw(sqlite_db, f"SELECT {', '.join(COLUMNS)} FROM executions")
        backend = open_backend(pg_url)
        try:
            assert 0 == backend.write(copied, [], 0)
        finally:
            backend.close()
        commands = [
            ["list", "--json"],
            ["list", "--name", "load", "--json"],
            ["list", "--status", "error", "--json"],
            ["list"],
            ["show", root, "--json"],
            ["show", retry],
            ["tree", root, "--json"],
            ["tree", root],
            ["lineage", retry, "--json"],
            ["chain", root, "--json"],
            ["stats", "--json"],
            ["export"],
        ]
        for argv in commands:
            answers = []
            for db in (sqlite_db, pg_url):
                code = main([*argv, "--db", db])
                out, err = capsys.readouterr()
                answers.append((code, out, err.replace(db, "DB")))
            assert answers[0] == answers[1], argv
            assert 0 == answers[0][0], argv

    def test_store_objects_equal(self, tmp_path: Path, pg_url: str) -> None:
        """get, list, lineage, chain, root, stats, children: equal objects on both backends."""
        sqlite_db = str(tmp_path / "runs.db")
        execlog.configure(db=sqlite_db)
        root, retry = record_workflow()
        execlog.shutdown()
        copied = raw(sqlite_db, f"SELECT {', '.join(COLUMNS)} FROM executions")
        backend = open_backend(pg_url)
        backend.write(copied, [], 0)
        backend.close()
        answers = []
        for db in (sqlite_db, pg_url):
            with execlog.open_store(db) as store:
                correlation = store.get(root).correlation_id  # type: ignore[union-attr]
                answers.append(
                    (
                        store.get(retry),
                        store.recent(50),
                        store.list(status="error"),
                        store.list(since=dt.datetime(2000, 1, 1, tzinfo=UTC), limit=3, offset=1),
                        store.lineage(retry),
                        store.lineage(root, depth=1),
                        store.correlation_chain(correlation),
                        store.root(correlation),
                        store.children(root),
                        store.stats(),
                        store.stats(name="load"),
                        store.runs(),
                        store.runs(status="partial"),
                        store.runs(search="too many"),
                        store.runs(search="100%_"),
                        store.histogram(),
                        store.histogram(name="load"),
                        store.resolve_id(retry[:-2]),
                        store.short_ids([root, retry]),
                    )
                )
        assert answers[0] == answers[1]


class TestConfiguration:
    @pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
    def test_both_spellings_record(self, pg_url: str, scheme: str) -> None:
        """``postgresql://`` and ``postgres://`` (any case) name the same database."""
        url = scheme + pg_url[len("postgresql") :]
        execlog.configure(db=url)
        with execlog.execution("spelled"):
            pass
        assert execlog.flush(timeout=10)
        with execlog.open_store(url) as store:
            assert ["spelled"] == [e.name for e in store.recent()]

    def test_libpq_environment_variables(
        self, pg_cluster: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``postgresql://`` alone: host, user and options come from PGHOST, PGUSER, PGOPTIONS."""
        search_path = pg_url.rsplit("%3D", 1)[1]
        monkeypatch.setenv("PGHOST", pg_cluster.root)
        monkeypatch.setenv("PGUSER", "execlog")
        monkeypatch.setenv("PGDATABASE", "postgres")
        monkeypatch.setenv("PGOPTIONS", f"-csearch_path={search_path}")
        execlog.configure(db="postgresql://")
        with execlog.execution("from-env"):
            pass
        assert execlog.flush(timeout=10)
        assert [("from-env",)] == raw(pg_url, "SELECT name FROM executions")

    def test_execlog_db_names_the_store(self, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """EXECLOG_DB may be a PostgreSQL URL, for recording and for open_store()."""
        monkeypatch.setenv("EXECLOG_DB", pg_url)
        RECORDER.reset()
        with execlog.execution("env"):
            pass
        assert execlog.flush(timeout=10)
        with execlog.open_store() as store:
            assert ["env"] == [e.name for e in store.recent()]

    def test_inject_hands_children_the_url_without_the_password(self, pg_cluster: Cluster) -> None:
        """inject() sets EXECLOG_DB to the PostgreSQL URL with its password left out."""
        schema_name = pg_cluster.new_schema()
        try:
            execlog.configure(db=pg_cluster.url(schema_name, password="inject-Secret"))
            with execlog.execution("parent"):
                env = execlog.inject({})
            assert pg_cluster.url(schema_name) == env["EXECLOG_DB"]
            execlog.shutdown()
        finally:
            RECORDER.reset()
            pg_cluster.drop_schema(schema_name)

    def test_unreachable_server_is_reported_at_run_time(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No server at that address: configure() accepts it, recording goes on, flush False."""
        execlog.configure(db=f"postgresql://nobody@/x?host={tmp_path}", flush_interval=0.05)
        with execlog.execution("lost-for-now"):
            pass
        assert not execlog.flush(timeout=1)
        assert any("cannot write" in r.getMessage() for r in caplog.records)


class TestRunCommand:
    def test_child_records_into_postgres_without_the_password_in_execlog_db(
        self, pg_cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """``execlog run --db postgresql://u:pw@...``: the command nests under it, and gets
        the URL without the password in EXECLOG_DB, the password as PGPASSWORD."""
        schema_name = pg_cluster.new_schema()
        url = pg_cluster.url(schema_name, password="run-Secret")
        seen = tmp_path / "env.json"
        child = (
            "import json, os, sys, execlog\n"
            "json.dump({k: os.environ.get(k) for k in ('EXECLOG_DB', 'PGPASSWORD')},"
            " open(sys.argv[1], 'w'))\n"
            "with execlog.execution('inside'):\n    pass\n"
            "assert execlog.flush(timeout=10)\n"
        )
        try:
            assert 0 == main(
                ["run", "--db", url, "--name", "job", "--", sys.executable, "-c", child, str(seen)]
            )
            execlog.shutdown()
            env = json.loads(seen.read_text())
            assert "run-Secret" == env["PGPASSWORD"]
            assert pg_cluster.url(schema_name) == env["EXECLOG_DB"]
            with execlog.open_store(pg_cluster.url(schema_name)) as store:
                job = store.list(name="job")[0]
                assert ["inside"] == [e.name for e in store.children(job.execution_id)]
        finally:
            RECORDER.reset()
            pg_cluster.drop_schema(schema_name)
        assert "run-Secret" not in "".join(capsys.readouterr())


class TestServe:
    def test_execlog_serve_answers_as_on_sqlite(self, tmp_path: Path, pg_url: str) -> None:
        """``execlog serve --db postgresql://...`` (a real server process): the same JSON."""
        import httpx

        from server_support import serving

        sqlite_db = str(tmp_path / "runs.db")
        execlog.configure(db=sqlite_db)
        root, retry = record_workflow()
        execlog.shutdown()
        copied = raw(sqlite_db, f"SELECT {', '.join(COLUMNS)} FROM executions")
        backend = open_backend(pg_url)
        backend.write(copied, [], 0)
        backend.close()
        paths = [
            "/api/executions",
            "/api/executions?status=error",
            f"/api/executions/{retry}",
            f"/api/executions/{retry}/lineage",
            f"/api/executions/{root}/tree",
            f"/api/correlations/{root}",
            "/api/stats",
        ]
        answers = []
        for db in (sqlite_db, pg_url):
            with serving(db) as url:
                answers.append([httpx.get(url + path).json() for path in paths])
        assert answers[0] == answers[1]


class TestUpsert:
    def test_upsert_counts_and_never_lets_running_win(self, tmp_path: Path, pg_url: str) -> None:
        """Store.upsert (the collector's ingest): same counts on both backends."""
        sqlite_db = str(tmp_path / "runs.db")
        execlog.configure(db=sqlite_db)
        record_workflow()
        execlog.shutdown()
        with execlog.open_store(sqlite_db) as source:
            executions = source.recent(50)
        running = [dataclasses.replace(e, status="running") for e in executions[:2]]
        answers = []
        for db in (str(tmp_path / "copy.db"), pg_url):
            with execlog.open_store(db, create=True) as store:
                answers.append(
                    (
                        store.upsert(executions),
                        store.upsert(running),
                        [e.status for e in store.recent(50)],
                    )
                )
        assert answers[0] == answers[1]
        assert len(executions) == answers[1][0]


class TestWriting:
    def test_running_rows_completed_in_place(self, pg_url: str) -> None:
        """flush() shows a live execution as running; its end replaces that row, once."""
        execlog.configure(db=pg_url)
        with execlog.execution("long") as ex:
            assert execlog.flush(timeout=10)
            assert [("running",)] == raw(pg_url, "SELECT status FROM executions")
        assert execlog.flush(timeout=10)
        assert [(ex.execution_id, "success")] == raw(
            pg_url, "SELECT execution_id, status FROM executions"
        )

    def test_a_late_running_row_never_overwrites_a_finished_one(self, pg_url: str) -> None:
        """A running row arriving after the final row, as running or as a final row, is ignored."""
        backend = open_backend(pg_url)
        try:
            final = ("x", "n", "k", "success", 10, 20, 0.01, None, None, None, None, None)
            final += (None, "x", "manual", None, None, 1, 1, "h")
            running = (*final[:3], "running", 10, None, None, *final[7:])
            backend.write([final], [], 0)
            backend.write([], [running], 0)
            backend.write([running], [], 0)
            assert "success" == backend.get("x")[3]  # type: ignore[index]
        finally:
            backend.close()

    def test_values_postgres_refuses_are_stored_made_safe(self, pg_url: str) -> None:
        """NUL characters and lone surrogates (text PostgreSQL rejects) never block a batch."""
        execlog.configure(db=pg_url)
        with execlog.execution("nul\x00name", inputs={"s": "a\x00b"}):
            pass
        with execlog.execution("surrogate\udcff"):
            pass
        with execlog.execution("plain"):
            pass
        assert execlog.flush(timeout=10)
        names = {r[0] for r in raw(pg_url, "SELECT name FROM executions")}
        assert {"nul\\x00name", "surrogate\\udcff", "plain"} == names

    def test_monthly_partitions_made_on_demand(self, pg_url: str) -> None:
        """Rows of three months and of far-away times land in partitions of their own."""
        backend = open_backend(pg_url)
        base = ("n", "k", "success")
        rest = (None, 1.0, None, None, None, None, None, None, "c", "manual", None, None, 1, 1, "h")
        starts = {
            "jan": 1_767_225_600_000_000,  # 2026-01-01
            "feb": 1_769_904_000_000_000,  # 2026-02-01
            "dec": 1_798_761_599_999_999,  # 2026-12-31T23:59:59.999999
            "old": -5,
            "far": 253_402_300_800_000_000,
        }
        try:
            backend.write([(eid, *base, us, *rest) for eid, us in starts.items()], [], 0)
        finally:
            backend.close()
        placed = dict(raw(pg_url, "SELECT execution_id, tableoid::regclass::text FROM executions"))
        assert {
            "jan": "executions_p202601",
            "feb": "executions_p202602",
            "dec": "executions_p202612",
            "old": "executions_before",
            "far": "executions_after",
        } == placed


class TestPrunePartitions:
    def test_whole_months_dropped_others_deleted_no_orphans(self, pg_url: str) -> None:
        """A month holding only pruned trees goes as a table; a mixed month loses rows."""
        day = 86_400_000_000
        jan, mar = 1_767_225_600_000_000, 1_772_323_200_000_000  # 2026-01-01, 2026-03-01
        rest = (None, 1.0, None, None, None, None, None)

        def row(eid: str, start: int, parent: str | None, corr: str) -> tuple[Any, ...]:
            return (eid, "n", "k", "success", start, *rest, parent, corr, "manual", None, None)

        rows = [
            row("a", jan, None, "a"),
            row("a1", jan + day, "a", "a"),
            row("b", mar, None, "b"),  # pruned; its month also holds a kept tree
            row("k", mar + 20 * day, None, "k"),
        ]
        backend = open_backend(pg_url)
        try:
            assert 0 == backend.write([(*r, 1, 1, "h") for r in rows], [], 0)
            assert 3 == backend.prune(mar + 10 * day, dry_run=True)
            assert 3 == backend.prune(mar + 10 * day)
        finally:
            backend.close()
        tables = {r[0] for r in raw(pg_url, "SELECT tablename FROM pg_tables")}
        assert "executions_p202601" not in tables
        assert "executions_p202603" in tables
        assert [("k",)] == raw(pg_url, "SELECT execution_id FROM executions")
        execlog.configure(db=pg_url)
        with execlog.execution("after-prune"):
            pass
        assert execlog.flush(timeout=10)
        assert 2 == count(pg_url)

    def test_a_month_dropped_by_another_process_is_made_again(self, pg_url: str) -> None:
        """A writer that saw a month whose partition another process's prune() dropped
        writes into it again (the partition is made anew), losing nothing."""
        jan = 1_767_225_600_000_000
        rest = (None, 1.0, None, None, None, None, None, None)

        def row(eid: str) -> tuple[Any, ...]:
            return (eid, "n", "k", "success", jan, *rest, eid, "manual", None, None, 1, 1, "h")

        writer, pruner = open_backend(pg_url), open_backend(pg_url)
        try:
            assert 0 == writer.write([row("first")], [], 0)
            assert 1 == pruner.prune(1_769_904_000_000_000)  # 2026-02-01
            assert "executions_p202601" not in {
                r[0] for r in raw(pg_url, "SELECT tablename FROM pg_tables")
            }
            assert 0 == writer.write([row("late")], [], 0)
        finally:
            writer.close()
            pruner.close()
        assert [("late",)] == raw(pg_url, "SELECT execution_id FROM executions")


class TestEvents:
    """Events (#14) on PostgreSQL: recorded in the batch, read oldest first, gone with their
    execution whether it is deleted, pruned row by row, or its month dropped whole."""

    def test_recorded_and_read_as_on_sqlite(self, pg_url: str, tmp_path: Path) -> None:
        answers = []
        for db in (pg_url, str(tmp_path / "events.db")):
            execlog.configure(db=db)
            with execlog.execution("load") as ex:
                execlog.event("rows loaded", rows=120, api_key="sk-1")
                execlog.event("slow source", level="warning")
            assert execlog.flush(timeout=10)
            store = execlog.open_store(db)
            try:
                answers.append(
                    [(e.level, e.message, e.attributes) for e in store.events(ex.execution_id)]
                )
            finally:
                store.close()
        assert answers[0] == answers[1]
        assert [
            ("info", "rows loaded", {"rows": 120, "api_key": "[REDACTED]"}),
            ("warning", "slow source", None),
        ] == [(lvl, msg, attrs or None) for lvl, msg, attrs in answers[0]]

    def test_events_go_with_their_execution(self, pg_url: str) -> None:
        day = 86_400_000_000
        jan, mar = 1_767_225_600_000_000, 1_772_323_200_000_000  # 2026-01-01, 2026-03-01
        rest = (None, 1.0, None, None, None, None, None)

        def row(eid: str, start: int) -> tuple[Any, ...]:
            return (eid, "n", "k", "success", start, *rest, None, eid, "manual", None, None)

        def event(eid: str, at: int) -> tuple[Any, ...]:
            return (eid, at, "info", f"in {eid}", None, None)

        names = ("jan", "mar", "kept", "deleted")
        starts = (jan, mar, mar + 20 * day, mar + 21 * day)
        backend = open_backend(pg_url)
        try:
            written = backend.write(
                [(*row(n, t), 1, 1, "h") for n, t in zip(names, starts, strict=True)],
                [],
                0,
                [event(n, t + 1) for n, t in zip(names, starts, strict=True)],
            )
            assert 0 == written
            assert [("in deleted",)] == [r[3:4] for r in backend.events("deleted")]
            assert 1 == backend.delete("deleted")  # the row trigger
            assert 2 == backend.prune(mar + 10 * day)  # January's month dropped, "mar" deleted
        finally:
            backend.close()
        assert "executions_p202601" not in {
            r[0] for r in raw(pg_url, "SELECT tablename FROM pg_tables")
        }
        assert [("kept",)] == raw(pg_url, "SELECT execution_id FROM execution_events")


class TestSchema:
    @pytest.mark.slow
    def test_migrations_recorded_and_many_processes_start_at_once(self, pg_url: str) -> None:
        """Eight processes opening a new database at once: one migrates, all succeed."""
        script = "import sys, execlog; execlog.open_store(sys.argv[1]).close(); print('ok')"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, pg_url], stdout=subprocess.PIPE, text=True
            )
            for _ in range(8)
        ]
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert ["ok"] * 8 == outs
        assert [(m.version, m.description) for m in schema.MIGRATIONS] == raw(
            pg_url, "SELECT version, description FROM schema_migrations ORDER BY version"
        )

    def test_newer_schema_refused_unchanged(self, pg_url: str) -> None:
        """A database migrated by a newer execlog: SchemaError, nothing written."""
        execlog.open_store(pg_url).close()
        raw(pg_url, "INSERT INTO schema_migrations VALUES (99, 'future', 'then')")
        with pytest.raises(execlog.SchemaError, match="newer"):
            execlog.open_store(pg_url)
        assert [(99,)] == raw(pg_url, "SELECT MAX(version) FROM schema_migrations")

    def test_another_applications_tables_refused(self, pg_url: str) -> None:
        """An executions table that is not execlog's is left alone, with a clear error."""
        raw(pg_url, "CREATE TABLE executions (id INTEGER)")
        with pytest.raises(execlog.StoreError, match="not an execlog database"):
            execlog.open_store(pg_url)


class TestFaults:
    def test_server_restart_mid_run(
        self, pg_cluster: Cluster, pg_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Server down: the program runs on, flush() says False, one warning; back up: all
        records arrive, none twice."""
        execlog.configure(db=pg_url, flush_interval=0.05)
        with execlog.execution("before"):
            pass
        assert execlog.flush(timeout=10)
        caplog.set_level(logging.INFO, logger="execlog")
        pg_cluster.stop()
        try:
            for i in range(200):
                with execlog.execution("during", inputs={"i": i}):
                    pass
            assert not execlog.flush(timeout=1)
            assert not execlog.flush(timeout=0.5)
        finally:
            pg_cluster.start()
        assert execlog.flush(timeout=30)
        assert [("before", 1), ("during", 200)] == raw(
            pg_url, "SELECT name, COUNT(*) FROM executions GROUP BY name ORDER BY name"
        )
        assert 200 == len({r[0] for r in raw(pg_url, "SELECT inputs FROM executions")}) - 1
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert 1 == len(warnings), [r.getMessage() for r in warnings]
        assert "cannot write" in warnings[0].getMessage()

    def test_server_down_with_a_full_queue_on_full_drop(
        self, pg_cluster: Cluster, pg_url: str
    ) -> None:
        """Down long enough to fill the queue: on_full="drop" keeps the program going, counts
        what it dropped, and the count and the kept records are stored once the server is back."""
        execlog.configure(db=pg_url, flush_interval=0.05, queue_size=50, on_full="drop")
        with execlog.execution("before"):
            pass
        assert execlog.flush(timeout=10)
        pg_cluster.stop()
        try:
            for _ in range(300):
                with execlog.execution("during"):
                    pass
        finally:
            pg_cluster.start()
        assert execlog.flush(timeout=30)
        with execlog.open_store(pg_url) as store:
            kept = len(store.list(name="during", limit=1000))
            assert 0 < kept <= 50
            assert 300 == kept + store.dropped_count()

    def test_connection_dropped_is_reconnected(self, pg_url: str) -> None:
        """The server ends the writer's session (failover, idle kill): it reconnects."""
        execlog.configure(db=pg_url, flush_interval=0.05)
        with execlog.execution("first"):
            pass
        assert execlog.flush(timeout=10)
        raw(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'execlog' AND pid <> pg_backend_pid()",
        )
        for _ in range(50):
            with execlog.execution("second"):
                pass
        deadline = time.monotonic() + 30
        while not execlog.flush(timeout=5) and time.monotonic() < deadline:
            pass
        assert 51 == count(pg_url)

    def test_a_store_reads_on_after_its_session_was_ended(self, pg_url: str) -> None:
        """A reader whose connection the server ended (a restart) reconnects and answers."""
        execlog.configure(db=pg_url)
        with execlog.execution("x"):
            pass
        assert execlog.flush(timeout=10)
        with execlog.open_store(pg_url) as store:
            assert ["x"] == [e.name for e in store.recent()]
            raw(
                pg_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'execlog' AND pid <> pg_backend_pid()",
            )
            assert ["x"] == [e.name for e in store.recent()]
            assert 1 == store.stats()[0].count

    def test_password_never_shown(
        self, pg_cluster: Cluster, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Not in repr(config), a log line, or an error, also when the server is away."""
        secret = "Hunter2-pw"
        schema_name = pg_cluster.new_schema()
        url = pg_cluster.url(schema_name, password=secret)
        caplog.set_level(logging.DEBUG)
        try:
            execlog.configure(db=url, flush_interval=0.05)

            assert secret not in repr(RECORDER.config)
            assert "****" in repr(RECORDER.config)
            with execlog.execution("a"):
                pass
            assert execlog.flush(timeout=10)
            pg_cluster.stop()
            try:
                with execlog.execution("b"):
                    pass
                assert not execlog.flush(timeout=1)
                with pytest.raises(execlog.StoreError) as error:
                    execlog.open_store(url)
                assert secret not in str(error.value)
                assert "****" in str(error.value)
            finally:
                pg_cluster.start()
            assert execlog.flush(timeout=30)
            execlog.shutdown()
        finally:
            pg_cluster.drop_schema(schema_name)
        assert caplog.records
        for record in caplog.records:
            assert secret not in record.getMessage()


_RECORDER_SCRIPT = """
import sys, execlog
db, worker, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
execlog.configure(db=db, batch_size=64, flush_interval=0.01)

@execlog.traced_execution
def step(i):
    return i * 2

for j in range(jobs):
    with execlog.execution("job", kind="workflow", tags={"worker": worker}):
        for i in range(4):
            step(i)
assert execlog.flush(timeout=60)
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
class TestManyProcesses:
    def test_four_recording_processes_and_a_reader(self, pg_url: str) -> None:
        """4 processes record concurrently while a reader queries: nothing lost or doubled."""
        execlog.open_store(pg_url).close()
        jobs = 300
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(_RECORDER_SCRIPT),
                    pg_url,
                    str(w),
                    str(jobs),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(4)
        ]
        errors: list[BaseException] = []
        stop = threading.Event()
        rounds = 0

        def read() -> None:
            nonlocal rounds
            try:
                with execlog.open_store(pg_url) as store:
                    while not stop.is_set():
                        for job in store.list(name="job", limit=5):
                            lineage = store.lineage(job.execution_id)
                            for d in lineage.descendants:
                                assert job.execution_id == d.parent_execution_id
                        store.stats()
                        rounds += 1
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            results = [p.communicate(timeout=100) for p in procs]
        finally:
            stop.set()
            reader.join(timeout=20)
        for p, (out, err) in zip(procs, results):
            assert (0, "done") == (p.returncode, out.strip()), err
        assert [] == errors
        assert rounds > 0
        assert 4 * jobs * 5 == count(pg_url)
        assert 4 * jobs * 5 == len(
            {r[0] for r in raw(pg_url, "SELECT execution_id FROM executions")}
        )
        assert [("job", 4 * jobs), ("step", 16 * jobs)] == raw(
            pg_url, "SELECT name, COUNT(*) FROM executions GROUP BY name ORDER BY name"
        )
        assert 0 == count(pg_url, "status <> 'success'")


# -- query plans ---------------------------------------------------------------------------


def _plans() -> dict[str, tuple[str, list[Any]]]:
    cases: dict[str, tuple[str, list[Any]]] = {
        "get": (pg.GET, ["x"]),
        "children": (pg.CHILDREN, ["x"]),
        "correlation_chain": (pg.CORRELATION, ["c"]),
        "root": (pg.ROOT, ["c", "c"]),
        "siblings": (pg.SIBLINGS, ["p", "x"]),
        "root_siblings": (pg.ROOT_SIBLINGS, ["c", "x"]),
        "ancestors": (pg.ANCESTORS, ["x", 20]),
        "descendants": (pg.DESCENDANTS, ["x", 20, "x"]),
        "stats": pg.stats_statement(None, None),
        "stats_name": pg.stats_statement("n", None),
        "stats_since": pg.stats_statement(None, 5),
        "delete": (pg.DELETE_TREE, ["x", "x"]),
        "runs": pg._runs_statement(RunsQuery()),
        "runs_filtered": pg._runs_statement(RunsQuery("n", "error", 1, 9, "x")),
        "run_counts": (pg.RUN_COUNTS, ["c"]),
        "histogram_name": pg._histogram_statement("n", None),
        "histogram_since": pg._histogram_statement(None, 5),
        "ids_from": (pg.IDS_FROM, ["x", 5]),
        "correlations_from": (pg.CORRELATIONS_FROM, ["x", 5]),
        "id_before": (pg.ID_BEFORE, ["x"]),
        "id_after": (pg.ID_AFTER, ["x"]),
        "prune_candidates": (pg.PRUNE_CANDIDATES, [5]),
        "prune_keep_running": (pg.PRUNE_KEEP_RUNNING, []),
        "prune_keep_referenced": (pg.PRUNE_KEEP_REFERENCED, []),
        "prune_delete": (pg.PRUNE_DELETE, []),
        "prune_count": (pg.PRUNE_COUNT, []),
    }
    for name in (None, "n"):
        for status in (None, "error"):
            for correlation in (None, "c"):
                for since in (None, 1):
                    query = ListQuery(name, status, correlation, since, None)
                    label = f"list-{name}-{status}-{correlation}-{since}"
                    cases[label] = pg._list_statement(query)
    return cases


class TestQueryPlans:
    @pytest.mark.parametrize("label", list(_plans()))
    def test_every_statement_is_answered_from_an_index(self, pg_url: str, label: str) -> None:
        """With sequential scans priced out, no plan reads an executions partition whole."""
        backend = open_backend(pg_url)
        backend.write(
            [
                (
                    *("x", "n", "k", "success", 1_767_225_600_000_000, None, 1.0, None, None),
                    *(None, None, None, None, "c", "manual", None, None, 1, 1, "h"),
                )
            ],
            [],
            0,
        )
        backend.close()
        statement, params = _plans()[label]
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")
            conn.execute(pg.PRUNE_CREATE.replace(" ON COMMIT DROP", ""))
            plan = "\n".join(
                r[0]
                for r in conn.execute(f"EXPLAIN {statement}", params)  # type: ignore[call-overload]
            )
        scans = re.findall(r"Seq Scan on (\w+)", plan)
        assert [] == [s for s in scans if s.startswith("executions")], plan
