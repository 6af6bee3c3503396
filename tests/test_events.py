"""Events on executions: ``execlog.event``, ``Store.events``, storage, deletion with executions."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from typing import TYPE_CHECKING

import orjson
import pytest

import execlog
from conftest import raw
from execlog._storage.migrations import LATEST
from execlog._storage.sqlite import SQLiteBackend
from execlog._writer import _split_events

if TYPE_CHECKING:
    from collections.abc import Iterator

UTC = dt.timezone.utc


@pytest.fixture
def store(db: str) -> Iterator[execlog.Store]:
    with execlog.open_store(db, create=True) as opened:
        yield opened


class TestEvent:
    def test_recorded_on_current_execution(self, db, implementation):
        """Events land on the innermost live execution, oldest first, with their fields."""

        @execlog.traced_execution
        def step(n):
            execlog.event("loaded", rows=n)
            execlog.event("slow", level="warning", seconds=1.5)
            return n

        with execlog.execution("outer") as outer:
            execlog.event("starting")
            step(3)
        assert execlog.flush()
        with execlog.open_store(db) as store:
            (inner,) = store.children(outer.execution_id)
            events = store.events(inner.execution_id)
            assert ["loaded", "slow"] == [e.message for e in events]
            assert [{"rows": 3}, {"seconds": 1.5}] == [e.attributes for e in events]
            assert ["info", "warning"] == [e.level for e in events]
            assert {inner.execution_id} == {e.execution_id for e in events}
            assert [None, None] == [e.logger for e in events]
            for e in events:
                assert e.at.tzinfo is not None
                assert inner.started_at <= e.at <= inner.ended_at
            assert events[0].at <= events[1].at
            assert ["starting"] == [e.message for e in store.events(outer.execution_id)]

    def test_outside_any_execution_is_a_no_op(self, db, store):
        """No current execution: nothing is queued, nothing raises."""
        execlog.event("nobody listens", x=1)
        assert execlog.flush()
        assert [] == raw(db, "SELECT * FROM execution_events")

    def test_disabled_records_nothing(self, db, store):
        """With recording off, events are not recorded either."""
        execlog.configure(enabled=False)
        with execlog.execution("off"):
            execlog.event("x")
        execlog.configure(enabled=True)
        assert execlog.flush()
        assert [] == raw(db, "SELECT * FROM execution_events")

    def test_attributes_redacted_bounded_and_never_raising(self, db, store):
        """Attributes are captured like inputs: secrets redacted, size bounded, odd values kept."""

        class Unencodable:
            def __repr__(self) -> str:
                return "<Unencodable>"

        execlog.configure(max_payload_bytes=1024)
        with execlog.execution("e") as ex:
            execlog.event(
                "connect",
                api_key="k",
                url="postgres://u:hunter2@db/x",
                thing=Unencodable(),
            )
            execlog.event("big", blob="x" * 10_000)
            execlog.event("secret in message: https://u:pw@host/")
        assert execlog.flush()
        first, big, masked = store.events(ex.execution_id)
        assert "[REDACTED]" == first.attributes["api_key"]
        assert "hunter2" not in first.attributes["url"]
        assert "<Unencodable>" in str(first.attributes["thing"])
        assert big.attributes["truncated"] is True
        assert len(raw(db, "SELECT attributes FROM execution_events")[1][0]) <= 1024
        assert "pw" not in masked.message.replace("pw@", "")

    def test_new_redact_names_apply_to_known_attribute_names(self, db, store):
        """Names once found clean are checked again after ``configure(redact=...)``."""
        with execlog.execution("e") as ex:
            execlog.event("m", customer=1)
            execlog.configure(redact=("customer",))
            execlog.event("m", customer=2)
        assert execlog.flush()
        assert [{"customer": 1}, {"customer": "[REDACTED]"}] == [
            e.attributes for e in store.events(ex.execution_id)
        ]

    def test_decorator_redact_applies(self, db, store, implementation):
        """A name given to the decorator's ``redact=`` is redacted in its events too."""

        @execlog.traced_execution(redact=("ssn",))
        def person():
            execlog.event("found", ssn="123-45-6789")
            return execlog.current_execution().execution_id

        eid = person()
        assert execlog.flush()
        assert {"ssn": "[REDACTED]"} == store.events(eid)[0].attributes

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("debug", "debug"),
            ("INFO", "info"),
            ("Warn", "warning"),
            ("error", "error"),
            ("fatal", "critical"),
            (logging.WARNING, "warning"),
            (25, "info"),
            (logging.CRITICAL + 10, "critical"),
        ],
    )
    def test_levels(self, db, store, given, stored):
        """Level names in any case, aliases and logging numbers map to the five levels."""
        with execlog.execution("e") as ex:
            execlog.event("m", level=given)
        assert execlog.flush()
        assert [stored] == [e.level for e in store.events(ex.execution_id)]

    def test_bad_level_reported_not_raised(self, db, store, caplog, monkeypatch):
        """An unknown level is recorded as info and reported once; user code goes on."""
        monkeypatch.delenv("EXECLOG_STRICT")
        with caplog.at_level(logging.WARNING, logger="execlog"), execlog.execution("e") as ex:
            execlog.event("m", level="loud")
            execlog.event("m", level="loud")
        assert execlog.flush()
        assert ["info", "info"] == [e.level for e in store.events(ex.execution_id)]
        assert 1 == sum("level must be one of" in r.getMessage() for r in caplog.records)

    def test_internal_error_never_reaches_user_code(self, db, caplog, monkeypatch):
        """An internal failure while recording an event is logged, not raised."""
        monkeypatch.delenv("EXECLOG_STRICT")
        monkeypatch.setattr("execlog._events._encode_attributes", _boom)
        with caplog.at_level(logging.ERROR, logger="execlog"), execlog.execution("e"):
            execlog.event("m", a=1)
        assert any("internal error" in r.getMessage() for r in caplog.records)

    def test_message_not_text(self, db, store):
        """A message that is not a str is recorded as its str()."""
        with execlog.execution("e") as ex:
            execlog.event(42)  # type: ignore[arg-type]
        assert execlog.flush()
        assert ["42"] == [e.message for e in store.events(ex.execution_id)]

    def test_from_threads_with_propagate(self, db, store):
        """Events from pool threads carrying the context land on the right execution."""
        with execlog.execution("fan-out") as ex:
            work = execlog.propagate(lambda i: execlog.event("item", i=i))
            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert execlog.flush()
        assert list(range(8)) == sorted(e.attributes["i"] for e in store.events(ex.execution_id))

    def test_to_dict(self, db, store):
        """``Event.to_dict`` gives the fields with ``at`` in ISO 8601."""
        with execlog.execution("e") as ex:
            execlog.event("m", k="v")
        assert execlog.flush()
        (event,) = store.events(ex.execution_id)
        data = event.to_dict()
        assert ["execution_id", "at", "level", "message", "attributes", "logger"] == list(data)
        assert event.at == dt.datetime.fromisoformat(data["at"])
        assert {"k": "v"} == data["attributes"]


class TestStorage:
    def test_migration_creates_table_and_index(self, db, store):
        """Migration 3 adds ``execution_events`` indexed by execution."""
        assert LATEST >= 3
        assert [(3,)] == raw(db, "SELECT version FROM schema_migrations WHERE version = 3")
        plan = raw(
            db,
            "EXPLAIN QUERY PLAN SELECT * FROM execution_events WHERE execution_id = ? "
            "ORDER BY at, rowid",
            ("x",),
        )
        assert any("execution_events_execution" in str(r) for r in plan)

    def test_delete_removes_events_of_the_tree(self, db, store):
        """``delete`` removes the events of the execution and of its descendants."""
        with execlog.execution("root") as root:
            execlog.event("r")
            with execlog.execution("child"):
                execlog.event("c")
        with execlog.execution("other") as other:
            execlog.event("o")
        assert execlog.flush()
        assert 2 == store.delete(root.execution_id)
        assert [("o",)] == raw(db, "SELECT message FROM execution_events")
        assert ["o"] == [e.message for e in store.events(other.execution_id)]

    def test_prune_removes_events(self, db, store):
        """``prune`` removes events with the trees it removes."""
        with execlog.execution("old"):
            execlog.event("gone")
        assert execlog.flush()
        assert 1 == store.prune(older_than=dt.timedelta(0))
        assert [] == raw(db, "SELECT * FROM execution_events")

    def test_unknown_execution_has_no_events(self, db, store):
        """An unknown id gives an empty list."""
        assert [] == store.events("nope")

    def test_split_keeps_queue_order(self):
        """The writer sorts events out of a batch without reordering either kind."""
        from execlog._storage import EVENT

        batch = [("a",), (EVENT, "e1"), ("b",), (EVENT, "e2")]
        assert ([("a",), ("b",)], [("e1",), ("e2",)]) == _split_events(batch)  # type: ignore[arg-type]

    def test_failing_database_keeps_events_for_retry(self, db, store, monkeypatch, caplog):
        """Events wait in memory while the database cannot be written, then get stored."""
        failures = [sqlite3.OperationalError("disk I/O error")]
        real = SQLiteBackend._write_once

        def flaky(self, *args):
            if failures:
                raise failures.pop()
            return real(self, *args)

        monkeypatch.setattr(SQLiteBackend, "_write_once", flaky)
        execlog.configure(flush_interval=0.01)
        with caplog.at_level(logging.WARNING, logger="execlog"), execlog.execution("e") as ex:
            execlog.event("kept", n=1)
        assert not execlog.flush(timeout=5)
        assert execlog.flush(timeout=10)
        assert not failures
        assert ["kept"] == [e.message for e in store.events(ex.execution_id)]

    def test_older_database_is_migrated(self, tmp_path):
        """A database at version 2 gains the events table when opened."""
        path = tmp_path / "v2.db"
        conn = sqlite3.connect(path)
        from execlog._storage.migrations import MIGRATIONS, _statements

        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for m in MIGRATIONS[:2]:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'x')", (m.version, "d"))
        conn.commit()
        conn.close()
        with execlog.open_store(str(path)) as store:
            assert [] == store.events("x")


def _boom(*args: object, **kwargs: object) -> None:
    msg = "boom"
    raise RuntimeError(msg)


class TestCLI:
    @pytest.fixture
    def recorded(self, db: str) -> tuple[str, str]:
        with execlog.execution("nightly") as root:
            execlog.event("starting", day="2026-11-21")
            with execlog.execution("load") as load:
                execlog.event("slow source", level="warning", source="s3")
        assert execlog.flush()
        return root.execution_id, load.execution_id

    def test_show_prints_events(self, db, recorded, capsys):
        """``execlog show`` lists the execution's events under its fields; ``--json`` too."""
        from execlog.cli import main

        _, load = recorded
        assert 0 == main(["show", "--db", db, load])
        out = capsys.readouterr().out
        assert "events:" in out
        assert "slow source" in out
        assert '{"source":"s3"}' in out
        assert 0 == main(["show", "--db", db, load, "--json"])
        data = orjson.loads(capsys.readouterr().out)
        assert ["slow source"] == [e["message"] for e in data["events"]]

    def test_tree_events(self, db, recorded, capsys):
        """``execlog tree --events`` shows each execution's events under its line."""
        from execlog.cli import main

        root, _ = recorded
        assert 0 == main(["tree", "--db", db, root])
        assert "starting" not in capsys.readouterr().out
        assert 0 == main(["tree", "--db", db, root, "--events"])
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("nightly")
        assert "starting" in lines[1]
        assert lines[2].startswith("└─ load")
        assert "slow source" in lines[3]
        assert "warning" in lines[3]
        assert 0 == main(["tree", "--db", db, root, "--events", "--json"])
        (tree,) = orjson.loads(capsys.readouterr().out)
        assert ["starting"] == [e["message"] for e in tree["events"]]
        assert ["slow source"] == [e["message"] for e in tree["children"][0]["events"]]


class TestCaptureFixture:
    def test_events_of_captured_execution(self, execlog_capture):
        """``execlog_capture.events`` reads a captured execution's events."""
        with execlog.execution("job"):
            execlog.event("done", n=1)
        (job,) = execlog_capture.named("job")
        assert ["done"] == [e.message for e in execlog_capture.events(job)]
        assert [{"n": 1}] == [e.attributes for e in execlog_capture.events(job.execution_id)]


class TestServer:
    def test_api_execution_carries_its_events(self, db):
        """``GET /api/executions/{id}`` adds the execution's ``events`` when it has some."""
        import httpx

        from execlog.server import create_app
        from server_support import live

        with execlog.execution("job") as job:
            execlog.event("rows loaded", rows=3)
        with execlog.execution("quiet") as quiet:
            pass
        assert execlog.flush()
        with (
            execlog.open_store(db) as store,
            live(create_app(store, loopback_only=True)) as url,
            httpx.Client(base_url=url) as client,
        ):
            data = client.get(f"/api/executions/{job.execution_id}").json()
            assert [("rows loaded", {"rows": 3})] == [
                (e["message"], e["attributes"]) for e in data["events"]
            ]
            assert "events" not in client.get(f"/api/executions/{quiet.execution_id}").json()

    def test_events_reach_a_collector(self, tmp_path, caplog):
        """With ``db="http://..."`` executions and their events arrive; nothing is reported."""
        from execlog.server import create_app
        from server_support import live

        collected = str(tmp_path / "collected.db")
        with (
            execlog.open_store(collected, create=True) as target,
            live(create_app(target, token="t0ken")) as url,
        ):
            execlog.configure(db=url, token="t0ken")
            with caplog.at_level(logging.WARNING, logger="execlog"):
                for i in range(2):
                    with execlog.execution("job") as job:
                        execlog.event("e", i=i)
                    assert execlog.flush(timeout=10)
            assert 2 == len(target.list(name="job"))
            assert [("e", {"i": 1})] == [
                (e.message, e.attributes) for e in target.events(job.execution_id)
            ]
        assert [] == [r.getMessage() for r in caplog.records]


class TestMigrationOrder:
    def test_database_made_at_4_without_3_gets_3(self, tmp_path):
        """Migrations landed side by side: a database with 1, 2 and 4 gains 3 when opened."""
        from execlog._storage.migrations import MIGRATIONS, _statements

        path = tmp_path / "v4.db"
        conn = sqlite3.connect(path)
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for m in MIGRATIONS:
            if m.version == 3:
                continue
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'x')", (m.version, "d"))
        conn.commit()
        conn.close()
        with execlog.open_store(str(path)) as store:
            assert [] == store.events("x")
        versions = [v for (v,) in raw(path, "SELECT version FROM schema_migrations ORDER BY 1")]
        assert [m.version for m in MIGRATIONS] == versions
