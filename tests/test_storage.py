"""The SQLite store: migrations, file safety, JSON columns, queries, concurrency, SQL injection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import FIELDS, rows
from conftest import raw as _raw
from execlog._storage.migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:
    from pathlib import Path


UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
BASE_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def at(us: int) -> dt.datetime:
    """The exact UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + dt.timedelta(microseconds=us)


def _snapshot(path: Path) -> tuple[bytes, list[str]]:
    """The file's bytes and the directory listing (no -wal/-shm/journal left behind)."""
    return path.read_bytes(), sorted(os.listdir(path.parent))


def _insert(db: str, **values: Any) -> None:
    """Insert one synthetic row straight into a migrated database."""
    row = {
        "execution_id": "id",
        "name": "n",
        "kind": "function",
        "status": "success",
        "started_at": BASE_US,
        "ended_at": None,
        "duration_ms": None,
        "inputs": None,
        "output": None,
        "error_type": None,
        "error_message": None,
        "error_stack": None,
        "parent_execution_id": None,
        "correlation_id": "c",
        "trigger_kind": "manual",
        "run_id": None,
        "tags": None,
        "pid": 1,
        "thread_id": 1,
        "host": "h",
    }
    row.update(values)
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            conn.execute(
                f"INSERT INTO executions ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            )
    finally:
        conn.close()


@execlog.traced_execution
def shape(x: int, label: str = "sq") -> dict[str, Any]:
    execlog.current_execution().tag(team="data", n=x)
    return {"area": x * x, "label": label, "items": [1, 2]}


@execlog.traced_execution
def boom(x: int) -> None:
    raise KeyError(x)


_OPEN_TOGETHER = """
import os, sys, time, execlog
db, me, total, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
folder = os.path.dirname(db)
open(os.path.join(folder, f"ready-{me}"), "w").close()
deadline = time.monotonic() + 30
while sum(1 for f in os.listdir(folder) if f.startswith("ready-")) < total:
    if time.monotonic() > deadline:
        sys.exit("barrier timeout")
    time.sleep(0.001)
if how == "store":
    with execlog.open_store(db, create=True) as store:
        store.recent(5)
else:
    execlog.configure(db=db)
    with execlog.execution("from-" + me):
        pass
    assert execlog.flush(timeout=20)
print("ok")
"""


class TestMigrations:
    @pytest.mark.parametrize("existing", [False, True], ids=["missing-file", "empty-file"])
    def test_migrates_a_new_database(self, tmp_path: Path, existing: bool) -> None:
        """From nothing (or a 0-byte file): versions recorded, exact columns, indexes, WAL."""
        db = tmp_path / "new.db"
        if existing:
            db.touch()
        execlog.open_store(db, create=True).close()

        migrations = _raw(str(db), "SELECT version, description, applied_at FROM schema_migrations")
        assert [(m.version, m.description) for m in MIGRATIONS] == [
            (v, d) for v, d, _ in migrations
        ]
        for _, _, applied_at in migrations:
            assert isinstance(applied_at, str)
            assert applied_at
        assert LATEST == max(v for v, _, _ in migrations)

        columns = [r[1] for r in _raw(str(db), "PRAGMA table_info(executions)")]
        assert FIELDS == columns
        assert FIELDS == [f.name for f in dataclasses.fields(execlog.Execution)]

        leading = set()
        for index in _raw(str(db), "PRAGMA index_list(executions)"):
            info = _raw(str(db), f"PRAGMA index_info({index[1]})")
            leading.add(info[0][2])
        assert {"correlation_id", "parent_execution_id"} <= leading
        assert ("wal",) == _raw(str(db), "PRAGMA journal_mode")[0]

    def test_reopening_applies_nothing_and_keeps_data(self, db: str) -> None:
        """A second open (store or writer) applies no migration and keeps every row."""
        for i in range(5):
            shape(i)
        assert 5 == len(rows(db))
        before = _raw(db, "SELECT * FROM schema_migrations ORDER BY version")
        execlog.shutdown()

        with execlog.open_store(db) as store:
            assert 5 == len(store.recent(100))
        shape(5)
        assert 6 == len(rows(db))
        with execlog.open_store(db) as store:
            assert 6 == len(store.recent(100))
        assert before == _raw(db, "SELECT * FROM schema_migrations ORDER BY version")

    @pytest.mark.timeout(90)
    def test_processes_opening_a_new_file_at_once_all_succeed(self, tmp_path: Path) -> None:
        """Four processes (two stores, two writers) open the same new file at the same time."""
        folder = tmp_path / "shared"
        folder.mkdir()
        db = str(folder / "race.db")
        hows = ["store", "writer", "store", "writer"]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(_OPEN_TOGETHER), db, str(i), "4", how],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, how in enumerate(hows)
        ]
        results = []
        for proc in procs:
            with proc:
                out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, out.strip(), err))
        assert [(0, "ok")] * 4 == [(rc, out) for rc, out, _ in results], results
        assert [(m.version,) for m in MIGRATIONS] == _raw(
            db, "SELECT version FROM schema_migrations ORDER BY version"
        )
        assert [("from-1",), ("from-3",)] == _raw(db, "SELECT name FROM executions ORDER BY name")


class TestPermissions:
    @pytest.fixture(autouse=True)
    def _permissive_umask(self) -> Any:
        old = os.umask(0o022)
        yield
        os.umask(old)

    def test_store_creates_the_file_0600(self, tmp_path: Path) -> None:
        """open_store() creates a database only its owner can read."""
        db = tmp_path / "private.db"
        with execlog.open_store(db, create=True):
            for path in (db, tmp_path / "private.db-wal", tmp_path / "private.db-shm"):
                if path.exists():
                    assert 0o600 == path.stat().st_mode & 0o777, path.name

    def test_writer_creates_the_file_0600(self, db: str) -> None:
        """The writer creates a database only its owner can read."""
        shape(1)
        assert execlog.flush(timeout=5)
        for path in (db, db + "-wal", db + "-shm"):
            if os.path.exists(path):
                assert 0o600 == os.stat(path).st_mode & 0o777, path


@pytest.fixture
def newer_db(tmp_path: Path) -> Path:
    """An execlog database whose schema_migrations says version 999."""
    db = tmp_path / "newer.db"
    execlog.open_store(db, create=True).close()
    _insert(str(db), execution_id="kept")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) "
            "VALUES (999, 'from the future', '2099-01-01T00:00:00Z')"
        )
    conn.close()
    return db


def _foreign(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.db"
    if kind == "corrupt-execlog":
        good = tmp_path / "good.db"
        with execlog.open_store(good, create=True):
            pass
        data = good.read_bytes()
        path.write_bytes(data[:100] + random.Random(0).randbytes(len(data) - 100))
    elif kind == "random-bytes":
        path.write_bytes(random.Random(0).randbytes(8192))
    elif kind == "text":
        path.write_text("name,value\n" + "alpha,1\n" * 500)
    else:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
            conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
        conn.close()
    return path


class TestForeignFiles:
    def test_newer_schema_raises_and_leaves_file_unchanged(self, newer_db: Path) -> None:
        """A schema newer than the library: SchemaError (a StoreError), file untouched."""
        before = _snapshot(newer_db)
        with pytest.raises(execlog.SchemaError) as info:
            execlog.open_store(newer_db)
        assert isinstance(info.value, execlog.StoreError)
        message = str(info.value)
        assert "999" in message
        assert "newer" in message.lower()
        assert before == _snapshot(newer_db)

    @pytest.mark.timeout(60)
    def test_writer_on_newer_schema_logs_and_never_breaks(
        self, newer_db: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A writer pointed at a newer database: user code runs, one WARNING, file untouched."""
        caplog.set_level(logging.WARNING, logger="execlog")
        before = _snapshot(newer_db)
        execlog.configure(db=str(newer_db))

        assert [shape(i)["area"] for i in range(20)] == [i * i for i in range(20)]
        with pytest.raises(KeyError):
            boom(1)
        assert execlog.flush(timeout=1) is False
        assert execlog.flush(timeout=1) is False
        warnings = [
            r for r in caplog.records if r.name == "execlog" and r.levelno == logging.WARNING
        ]
        assert 1 == len(warnings), [r.getMessage() for r in warnings]
        assert "999" in warnings[0].getMessage()
        assert before == _snapshot(newer_db)

    @pytest.mark.parametrize(
        "kind", ["random-bytes", "text", "other-application", "corrupt-execlog"]
    )
    def test_foreign_file_raises_and_is_left_unchanged(self, tmp_path: Path, kind: str) -> None:
        """Not SQLite, or another application's SQLite: StoreError, file byte-for-byte intact."""
        path = _foreign(tmp_path, kind)
        before = _snapshot(path)
        with pytest.raises(execlog.StoreError):
            execlog.open_store(path)
        assert before == _snapshot(path)
        if kind == "other-application":
            assert [(1, "a@example.com")] == _raw(str(path), "SELECT * FROM users")

    def test_unreachable_path_raises_store_error(self, tmp_path: Path) -> None:
        """A path that cannot be created raises StoreError, not a raw OSError/sqlite3 error."""
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a directory")
        with pytest.raises(execlog.StoreError):
            execlog.open_store(blocker / "runs.db")
        with pytest.raises(execlog.StoreError):
            execlog.open_store(tmp_path / "missing-dir" / "runs.db")
        assert "a file, not a directory" == blocker.read_text()

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("kind", ["random-bytes", "other-application"])
    def test_writer_on_foreign_file_never_breaks(
        self, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A writer pointed at a foreign file: user code runs, file untouched."""
        caplog.set_level(logging.WARNING, logger="execlog")
        path = _foreign(tmp_path, kind)
        before = _snapshot(path)
        execlog.configure(db=str(path))
        assert 9 == shape(3)["area"]
        assert execlog.flush(timeout=1) is False
        assert 1 == len(
            [r for r in caplog.records if r.name == "execlog" and r.levelno == logging.WARNING]
        )
        assert before == _snapshot(path)


class TestJsonColumns:
    def test_sqlite_json_functions_work_on_payload_columns(self, db: str) -> None:
        """inputs/output/tags are JSON text that SQLite's JSON functions read directly."""
        shape(3, label="tri")
        assert execlog.flush(timeout=5)
        assert [(3, "tri", 1, 9, 2, 1, "data", "text", "text")] == _raw(
            db,
            "SELECT json_extract(inputs, '$.x'), json_extract(inputs, '$.label'), "
            "json_valid(output), json_extract(output, '$.area'), "
            "json_array_length(output, '$.items'), json_valid(tags), "
            "json_extract(tags, '$.team'), typeof(inputs), typeof(output) FROM executions",
        )

    def test_error_row_payloads(self, db: str) -> None:
        """An error row keeps valid JSON inputs and the error fields as text."""
        with pytest.raises(KeyError):
            boom(4)
        [row] = rows(db)
        assert 4 == json.loads(row["inputs"])["x"]
        assert ("error", "KeyError") == (row["status"], row["error_type"])
        assert "KeyError" in row["error_stack"]


class TestQueries:
    @pytest.fixture
    def store_db(self, tmp_path: Path) -> str:
        """Five synthetic rows with known times (two share a started_at)."""
        db = str(tmp_path / "q.db")
        execlog.open_store(db, create=True).close()
        for eid, name, status, us, corr in [
            ("id-a", "load", "success", BASE_US + 1, "c1"),
            ("id-b", "load", "error", BASE_US + 2, "c1"),
            ("id-c", "transform", "success", BASE_US + 2, "c2"),
            ("id-d", "load", "success", BASE_US + 3, "c2"),
            ("id-e", "load", "cancelled", BASE_US + 5, "c1"),
        ]:
            _insert(
                db, execution_id=eid, name=name, status=status, started_at=us, correlation_id=corr
            )
        return db

    @staticmethod
    def _ids(found: list[execlog.Execution]) -> list[str]:
        return [e.execution_id for e in found]

    def test_list_is_newest_first_then_id_descending(self, store_db: str) -> None:
        """list() orders by started_at then execution_id, both descending."""
        with execlog.open_store(store_db) as store:
            assert ["id-e", "id-d", "id-c", "id-b", "id-a"] == self._ids(store.list())

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"name": "load"}, ["id-e", "id-d", "id-b", "id-a"]),
            ({"name": "lo"}, []),
            ({"status": "success"}, ["id-d", "id-c", "id-a"]),
            ({"name": "load", "status": "success"}, ["id-d", "id-a"]),
            ({"correlation_id": "c1"}, ["id-e", "id-b", "id-a"]),
            ({"correlation_id": "c1", "name": "load", "status": "error"}, ["id-b"]),
            ({"since": at(BASE_US + 2)}, ["id-e", "id-d", "id-c", "id-b"]),
            ({"until": at(BASE_US + 3)}, ["id-c", "id-b", "id-a"]),
            ({"since": at(BASE_US + 2), "until": at(BASE_US + 3)}, ["id-c", "id-b"]),
            ({"since": at(BASE_US + 2), "until": at(BASE_US + 2)}, []),
            (
                {"since": at(BASE_US + 2), "until": at(BASE_US + 5), "name": "load"},
                ["id-d", "id-b"],
            ),
            ({"limit": 2}, ["id-e", "id-d"]),
            ({"limit": 2, "offset": 2}, ["id-c", "id-b"]),
            ({"limit": 2, "offset": 4}, ["id-a"]),
            ({"offset": 5}, []),
            ({"name": "load", "limit": 1, "offset": 1}, ["id-d"]),
            ({"limit": 0}, []),
        ],
    )
    def test_list_filters_combine(
        self, store_db: str, filters: dict[str, Any], expected: list[str]
    ) -> None:
        """Every filter narrows the result; since is inclusive, until exclusive."""
        with execlog.open_store(store_db) as store:
            assert expected == self._ids(store.list(**filters))

    def test_since_until_accept_other_timezones(self, store_db: str) -> None:
        """Aware datetimes in another zone mean the same instant."""
        plus2 = dt.timezone(dt.timedelta(hours=2))
        with execlog.open_store(store_db) as store:
            assert ["id-c", "id-b"] == self._ids(
                store.list(
                    since=at(BASE_US + 2).astimezone(plus2), until=at(BASE_US + 3).astimezone(plus2)
                )
            )

    def test_bounds_are_exact_to_the_microsecond(self, tmp_path: Path) -> None:
        """since/until boundaries and started_at round-trip exactly for many microseconds."""
        db = str(tmp_path / "us.db")
        execlog.open_store(db, create=True).close()
        rng = random.Random(1)
        stamps = sorted({BASE_US + rng.randrange(10**12) for _ in range(60)} | {BASE_US + 999_999})
        for i, us in enumerate(stamps):
            _insert(db, execution_id=f"id-{i:03}", started_at=us, ended_at=us + 7)
        with execlog.open_store(db) as store:
            for i, us in enumerate(stamps):
                eid = f"id-{i:03}"
                ex = store.get(eid)
                assert (at(us), at(us + 7)) == (ex.started_at, ex.ended_at)
                window = self._ids(store.list(since=at(us), until=at(us + 1)))
                assert [eid] == window
                assert eid not in self._ids(store.list(until=at(us), limit=1000))
                assert eid not in self._ids(store.list(since=at(us + 1), limit=1000))
                assert [eid] == self._ids(store.list(since=ex.started_at, until=at(us + 1)))

    def test_recent(self, store_db: str) -> None:
        """recent(limit) is the newest `limit` executions, newest first."""
        with execlog.open_store(store_db) as store:
            assert ["id-e", "id-d", "id-c"] == self._ids(store.recent(3))
            assert ["id-e", "id-d", "id-c", "id-b", "id-a"] == self._ids(store.recent())
            assert ["id-e"] == self._ids(store.recent(limit=1))

    def test_get(self, store_db: str) -> None:
        """get() returns the execution, or None for an unknown id."""
        with execlog.open_store(store_db) as store:
            found = store.get("id-c")
            assert found is not None
            assert ("id-c", "transform", "c2", at(BASE_US + 2)) == (
                found.execution_id,
                found.name,
                found.correlation_id,
                found.started_at,
            )
            assert store.get("id-zzz") is None
            assert store.get("") is None

    def test_recorded_execution_fields_have_the_right_types(self, db: str) -> None:
        """Decoded fields: aware UTC datetimes, dicts, ints, a host; to_dict() is JSON-ready."""
        with execlog.execution("root", tags={"k": [1, 2]}, run_id="r-1") as root:
            shape(2)
            with pytest.raises(KeyError):
                boom(5)
        assert execlog.flush(timeout=5)
        with execlog.open_store(db) as store:
            [rec] = store.list(name=shape.__qualname__)
            [err] = store.list(status="error")
            top = store.get(root.execution_id)
        assert top is not None

        for ex in (rec, err, top):
            assert isinstance(ex, execlog.Execution)
            assert isinstance(ex.started_at, dt.datetime)
            assert isinstance(ex.ended_at, dt.datetime)
            assert dt.timedelta(0) == ex.started_at.utcoffset()
            assert dt.timedelta(0) == ex.ended_at.utcoffset()
            assert ex.started_at <= ex.ended_at
            assert isinstance(ex.duration_ms, float)
            assert ex.duration_ms >= 0
            assert isinstance(ex.pid, int)
            assert os.getpid() == ex.pid
            assert isinstance(ex.thread_id, int)
            assert isinstance(ex.host, str)
            assert ex.host
            assert isinstance(ex.tags, dict)
            assert root.correlation_id == ex.correlation_id
            assert "r-1" == ex.run_id
            decoded = json.loads(json.dumps(ex.to_dict()))
            assert FIELDS == list(decoded)
            assert ex.started_at == dt.datetime.fromisoformat(decoded["started_at"])

        assert {"x": 2, "label": "sq"} == rec.inputs
        assert {"area": 4, "label": "sq", "items": [1, 2]} == rec.output
        assert {"team": "data", "n": 2} == rec.tags
        assert (root.execution_id, "child", "function") == (
            rec.parent_execution_id,
            rec.trigger_kind,
            rec.kind,
        )
        assert ("KeyError", "5") == (err.error_type, err.error_message)
        assert "Traceback" in err.error_stack
        assert {"k": [1, 2]} == top.tags
        assert (None, "manual", "block") == (top.parent_execution_id, top.trigger_kind, top.kind)

    def test_execution_is_frozen(self, db: str) -> None:
        """Execution objects cannot be modified."""
        shape(1)
        assert execlog.flush(timeout=5)
        with execlog.open_store(db) as store:
            [ex] = store.recent(1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            ex.status = "error"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            ex.inputs = {}  # type: ignore[misc]
        assert "success" == ex.status


_READER = """
import sqlite3, sys, execlog
db, stop = sys.argv[1], sys.argv[2]
import os
reads = 0
store = execlog.open_store(db)
store.recent(1)
print("ready", flush=True)
while not os.path.exists(stop):
    store.recent(20)
    store.list(status="success", limit=5)
    conn = sqlite3.connect(db, timeout=10)
    conn.execute("SELECT COUNT(*) FROM executions").fetchone()
    conn.close()
    reads += 1
store.close()
print(reads)
"""


class TestConcurrentReaders:
    @pytest.mark.timeout(120)
    def test_readers_never_fail_while_writing(self, db: str, tmp_path: Path) -> None:
        """A reader thread and a reader process query in a loop during 5,000 recorded calls."""
        execlog.configure(batch_size=50, flush_interval=0.01)
        execlog.open_store(db, create=True).close()
        stop_file = tmp_path / "stop"
        reader_proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_READER), db, str(stop_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert reader_proc.stdout is not None
        assert "ready" == reader_proc.stdout.readline().strip()
        stop = threading.Event()
        errors: list[BaseException] = []
        reads = [0]

        def read() -> None:
            try:
                while not stop.is_set():
                    with execlog.open_store(db) as store:
                        store.recent(20)
                        store.list(name=shape.__qualname__, limit=10)
                        store.get("nope")
                    reads[0] += 1
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            for i in range(5000):
                shape(i)
                if i % 100 == 99:
                    assert execlog.flush(timeout=30)
        finally:
            stop.set()
            stop_file.touch()
            reader.join(timeout=30)
            with reader_proc:
                out, err = reader_proc.communicate(timeout=60)
        assert [] == errors
        assert reads[0] > 0
        assert 0 == reader_proc.returncode, err
        assert int(out) > 0  # reads made while the writer was writing
        assert 5000 == len(rows(db))


HOSTILE = [
    "x'); DROP TABLE executions; --",
    "a\x00b\x00",
    "ünïcødé 名前 🚀 \u202e\ufeff'\"`;--",
    "N" * 100_000 + "🚀",
]


class TestParameterisedSql:
    @pytest.mark.parametrize("name", HOSTILE, ids=["injection", "nul", "unicode", "100kb"])
    def test_hostile_names_round_trip(self, db: str, name: str) -> None:
        """Hostile names are stored and read back exactly; other rows are untouched."""
        with execlog.execution("bystander", inputs={"a": 1}) as bystander:
            pass
        assert execlog.flush(timeout=5)
        with execlog.open_store(db) as store:
            before = store.get(bystander.execution_id)

        payload = name[:1000]  # inputs/tags are bounded by max_payload_bytes; names are not
        with execlog.execution(name, kind=name, inputs={"q": payload}, tags={"t": payload}) as ex:
            pass
        traced = execlog.traced_execution(name=name)(lambda: 1)
        assert 1 == traced()
        assert execlog.flush(timeout=5)

        with execlog.open_store(db) as store:
            got = store.get(ex.execution_id)
            assert got is not None
            assert (name, name, {"q": payload}, {"t": payload}) == (
                got.name,
                got.kind,
                got.inputs,
                got.tags,
            )
            by_name = store.list(name=name)
            assert 2 == len(by_name)
            assert {name} == {e.name for e in by_name}
            assert [] == store.list(status=name)
            assert [] == store.list(correlation_id=name)
            assert store.get(name) is None
            assert before == store.get(bystander.execution_id)
            assert 3 == len(store.recent(10))
        assert [(3,)] == _raw(db, "SELECT COUNT(*) FROM executions")
        assert [(name,)] == _raw(
            db, "SELECT name FROM executions WHERE execution_id = ?", (ex.execution_id,)
        )

    def test_hostile_filter_values_match_nothing(self, db: str) -> None:
        """Injection attempts in every filter are plain values that match nothing."""
        shape(1)
        assert execlog.flush(timeout=5)
        attack = "x' OR '1'='1"
        with execlog.open_store(db) as store:
            assert [] == store.list(name=attack)
            assert [] == store.list(status=attack)
            assert [] == store.list(correlation_id=attack)
            assert [] == store.list(name=attack, status=attack, correlation_id=attack)
            assert store.get(attack) is None
            assert 1 == len(store.recent())

    def test_store_is_fresh_in_each_test(self, db: str) -> None:
        """The recorder writes into this test's own database (no leak between tests)."""
        start = time.monotonic()
        shape(1)
        assert 1 == len(rows(db))
        assert time.monotonic() - start < 5


class TestNoneBinding:
    """``None`` binds through a registered adapter; it still stores ``NULL``."""

    def test_none_is_stored_as_null(self, db: str) -> None:
        """A root call's parent, run id, tags and error columns are SQL NULL."""

        @execlog.traced_execution
        def step() -> None:
            return None

        step()
        assert execlog.flush()
        conn = sqlite3.connect(db)
        try:
            nulls = conn.execute(
                "SELECT parent_execution_id IS NULL, run_id IS NULL, tags IS NULL, "
                "error_type IS NULL, error_message IS NULL, error_stack IS NULL, "
                "typeof(output) FROM executions"
            ).fetchone()
        finally:
            conn.close()
        assert (1, 1, 1, 1, 1, 1, "text") == nulls

    def test_program_sqlite_usage_is_unchanged(self, tmp_path: Path) -> None:
        """A program's own sqlite3 code still binds None as NULL next to execlog."""
        conn = sqlite3.connect(str(tmp_path / "own.db"))
        try:
            conn.execute("CREATE TABLE t (a, b)")
            conn.execute("INSERT INTO t VALUES (?, ?)", (None, 1))
            assert [(None, 1)] == conn.execute("SELECT a, b FROM t WHERE a IS NULL").fetchall()
        finally:
            conn.close()

    def test_no_sqlite3_adapter_is_registered(self) -> None:
        """Recording leaves sqlite3's process-wide adapter registry as the program had it."""
        script = textwrap.dedent(
            """
            import os, sqlite3, tempfile
            before = dict(sqlite3.adapters)
            import execlog
            execlog.configure(db=os.path.join(tempfile.mkdtemp(), "x.db"))
            with execlog.execution("b"):
                pass
            assert execlog.flush()
            assert before == dict(sqlite3.adapters), sqlite3.adapters
            try:
                sqlite3.adapt(None)
            except sqlite3.ProgrammingError:
                print("unchanged")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert (0, "unchanged") == (done.returncode, done.stdout.strip()), done.stderr

    @pytest.mark.parametrize("run_id", [0, False, 0.0, "0", ""])
    def test_falsy_values_are_not_null(self, db: str, run_id: Any) -> None:
        """A run id of 0, False, 0.0 or "" is stored as given (TEXT affinity), not as NULL."""
        with execlog.execution("parent", run_id=run_id), execlog.execution("child"):
            pass
        assert execlog.flush()
        conn = sqlite3.connect(db)
        try:
            stored = conn.execute(
                "SELECT name, run_id IS NULL FROM executions ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
        assert [("child", 0), ("parent", 0)] == stored
