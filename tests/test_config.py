"""``execlog.configure``: defaults, validation, partial updates, database targets, lifecycle."""

# The house style writes `expected == actual` (STYLE.md, Tests); ruff's SIM300 wants the reverse.

from __future__ import annotations

import dataclasses
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import execlog
from conftest import rows
from execlog._recorder import RECORDER


@execlog.traced_execution
def work(n: int) -> int:
    """A traced function used to record something."""
    return n * 2


def _names(db_path: str | Path) -> list[str]:
    return [r["name"] for r in rows(str(db_path))]


def _settings() -> dict[str, Any]:
    return dataclasses.asdict(RECORDER.config)


class TestDefaults:
    def test_documented_defaults(self) -> None:
        """A fresh recorder has the defaults of API.md section 6."""
        config = RECORDER.config
        assert 512 == config.batch_size
        assert 0.2 == config.flush_interval
        assert 100_000 == config.queue_size
        assert "block" == config.on_full
        assert 65_536 == config.max_payload_bytes
        assert config.capture_inputs is True
        assert config.capture_output is True
        assert config.enabled is True
        assert () == tuple(config.redact)

    def test_default_db(self, tmp_path: Path) -> None:
        """Without ``EXECLOG_DB`` nor ``configure(db=...)`` the database is ``./execlog.db``."""
        assert Path("./execlog.db") == Path(RECORDER.config.db)
        assert 4 == work(2)
        assert ["work"] == _names(tmp_path / "execlog.db")  # the test runs in tmp_path


class TestPartialUpdates:
    def test_only_given_options_change(self) -> None:
        """``configure()`` changes only the options it is given."""
        before = _settings()
        execlog.configure(batch_size=10)
        assert {**before, "batch_size": 10} == _settings()
        execlog.configure(flush_interval=0.5, capture_output=False)
        assert {
            **before,
            "batch_size": 10,
            "flush_interval": 0.5,
            "capture_output": False,
        } == _settings()

    def test_empty_call_changes_nothing(self) -> None:
        """``configure()`` with no options keeps everything."""
        execlog.configure(queue_size=7, on_full="drop")
        before = _settings()
        execlog.configure()
        assert before == _settings()

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("batch_size", 1),
            ("batch_size", 10_000),
            ("flush_interval", 1),
            ("flush_interval", 0.001),
            ("queue_size", 1),
            ("on_full", "drop"),
            ("on_full", "block"),
            ("capture_inputs", False),
            ("capture_output", False),
            ("max_payload_bytes", 1),
            ("enabled", False),
            ("enabled", True),
        ],
    )
    def test_valid_values_applied(self, option: str, value: object) -> None:
        """Each valid value is applied as given."""
        execlog.configure(**{option: value})
        assert value == getattr(RECORDER.config, option)

    def test_redact_accepts_tuple_and_list(self) -> None:
        """``redact`` takes a tuple or a list of names."""
        execlog.configure(redact=("ssn",))
        assert ("ssn",) == tuple(RECORDER.config.redact)
        execlog.configure(redact=["dob", "iban"])
        assert ("dob", "iban") == tuple(RECORDER.config.redact)


INVALID = [
    ("batch_size", 0),
    ("batch_size", -1),
    ("batch_size", True),
    ("batch_size", "5"),
    ("batch_size", None),
    ("batch_size", 1.5),
    ("batch_size", 5.0),
    ("queue_size", 0),
    ("queue_size", -1),
    ("queue_size", True),
    ("queue_size", "5"),
    ("queue_size", None),
    ("queue_size", 1.5),
    ("max_payload_bytes", 0),
    ("max_payload_bytes", -1),
    ("max_payload_bytes", True),
    ("max_payload_bytes", "5"),
    ("max_payload_bytes", None),
    ("max_payload_bytes", 1.5),
    ("batch_size", 1_000_000_001),
    ("queue_size", 1_000_000_001),
    ("max_payload_bytes", 1_000_000_001),
    ("max_payload_bytes", 10**20),
    ("queue_size", 10**20),
    ("flush_interval", 0),
    ("flush_interval", 0.0),
    ("flush_interval", -1),
    ("flush_interval", -0.5),
    ("flush_interval", math.nan),
    ("flush_interval", math.inf),
    ("flush_interval", -math.inf),
    ("flush_interval", 10_000_001),
    ("flush_interval", 1e300),
    ("flush_interval", "5"),
    ("flush_interval", None),
    ("flush_interval", True),
    ("on_full", "sometimes"),
    ("on_full", "BLOCK"),
    ("on_full", None),
    ("on_full", 1),
    ("capture_inputs", 1),
    ("capture_inputs", "yes"),
    ("capture_inputs", None),
    ("capture_output", 1),
    ("capture_output", 0),
    ("enabled", 1),
    ("enabled", "false"),
    ("enabled", None),
    ("db", 123),
    ("db", ""),
    ("db", None),
    ("db", b"runs.db"),
    ("redact", [1]),
    ("redact", ["ssn", None]),
    ("redact", 5),
    ("redact", None),
]


class TestValidation:
    @pytest.mark.parametrize(("option", "value"), INVALID)
    def test_invalid_value_raises_naming_option(self, option: str, value: object) -> None:
        """A wrong type or out-of-range value raises ConfigError (a ValueError) naming it."""
        before = _settings()
        with pytest.raises(execlog.ConfigError, match=option) as info:
            execlog.configure(**{option: value})
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, execlog.ExeclogError)
        assert before == _settings()

    @pytest.mark.parametrize(("option", "value"), INVALID)
    def test_invalid_value_applies_nothing(self, option: str, value: object) -> None:
        """A call mixing valid and invalid options applies none of them."""
        before = _settings()
        valid = {"batch_size": 3} if option != "batch_size" else {"queue_size": 3}
        with pytest.raises(ValueError, match=option):
            execlog.configure(**valid, **{option: value})
        assert before == _settings()

    def test_invalid_then_valid_recorded_in_old_db(self, db: str, tmp_path: Path) -> None:
        """A rejected call that also named a new db keeps recording into the old one."""
        other = tmp_path / "other.db"
        with pytest.raises(ValueError, match="batch_size"):
            execlog.configure(db=str(other), batch_size=0)
        assert 2 == work(1)
        assert ["work"] == _names(db)
        assert not other.exists()

    def test_unknown_option_raises(self) -> None:
        """An option that does not exist raises and names it."""
        before = _settings()
        with pytest.raises((ValueError, TypeError), match="batchsize"):
            execlog.configure(batchsize=10)
        assert before == _settings()

    def test_unknown_option_with_valid_one_applies_nothing(self) -> None:
        """An unknown option next to a valid one leaves the valid one unapplied."""
        before = _settings()
        with pytest.raises((ValueError, TypeError), match="colour"):
            execlog.configure(batch_size=9, colour="red")
        assert before == _settings()

    def test_config_error_is_public(self) -> None:
        """``execlog.ConfigError`` is a ``ValueError``."""
        assert issubclass(execlog.ConfigError, ValueError)


class TestLargestValues:
    """The largest values configure() accepts work on both recording paths."""

    @pytest.mark.parametrize(
        "options",
        [
            {"max_payload_bytes": 1_000_000_000},
            {"queue_size": 1_000_000_000},
            {"batch_size": 1_000_000_000},
            {"flush_interval": 10_000_000},
        ],
        ids=lambda options: next(iter(options)),
    )
    def test_records_at_the_upper_bound(
        self, implementation: str, db: str, options: dict[str, object]
    ) -> None:
        """Recording, flushing and reading back work with each option at its maximum."""
        execlog.configure(**options)

        @execlog.traced_execution(name="step")
        def step(text: str) -> str:
            return text.upper()

        with execlog.execution("job"):
            step("x" * 10_000)

        assert execlog.flush(timeout=10)
        with execlog.open_store(db) as store:
            recorded = {e.name: e for e in store.recent()}
        assert {"job", "step"} <= set(recorded)
        assert "X" * 10_000 == recorded["step"].output


class TestTimeouts:
    """flush(timeout=) and shutdown(timeout=) check their argument."""

    @pytest.mark.parametrize("call", ["flush", "shutdown"])
    @pytest.mark.parametrize(
        ("value", "error"),
        [("5", TypeError), (None, TypeError), (True, TypeError), (math.nan, ValueError)],
    )
    def test_bad_timeout_raises(
        self, db: str, call: str, value: object, error: type[Exception]
    ) -> None:
        """A timeout that is not a number of seconds raises at once, naming it."""
        with execlog.execution("job"):
            pass

        with pytest.raises(error, match="timeout"):
            getattr(execlog, call)(timeout=value)

    @pytest.mark.parametrize(
        ("call", "value"),
        [
            *[("flush", v) for v in (math.inf, 1e300, 10**30, -1, -math.inf)],
            *[("shutdown", v) for v in (math.inf, 1e300, 10**30)],
        ],
    )
    def test_any_length_of_timeout_works(self, db: str, call: str, value: float) -> None:
        """An endless timeout waits as long as needed (flush: a negative one does not wait)."""
        with execlog.execution("job"):
            pass

        getattr(execlog, call)(timeout=value)

        assert execlog.flush(timeout=math.inf)
        assert ["job"] == [r["name"] for r in rows(db)]


class TestDatabaseTargets:
    def test_db_accepts_pathlib_path(self, tmp_path: Path) -> None:
        """``db`` may be a ``pathlib.Path``; recording goes to that file."""
        target = tmp_path / "sub-dir-less.db"
        execlog.configure(db=target)
        assert str(target) == str(Path(RECORDER.config.db))
        assert 6 == work(3)
        assert ["work"] == _names(target)

    def test_db_accepts_str(self, tmp_path: Path) -> None:
        """``db`` may be a ``str``."""
        target = str(tmp_path / "as-str.db")
        execlog.configure(db=target)
        work(1)
        assert ["work"] == _names(target)

    @pytest.mark.parametrize("url", ["mongodb://x", "redis://localhost:6379/0", "ftp://h/x.db"])
    def test_unknown_url_scheme_raises(self, url: str) -> None:
        """A URL whose scheme no backend handles raises ConfigError naming ``db``."""
        before = _settings()
        with pytest.raises(execlog.ConfigError, match="db"):
            execlog.configure(db=url)
        assert before == _settings()

    def test_unwritable_path_is_not_a_configure_error(self) -> None:
        """A path that cannot be written is accepted by ``configure`` (reported at run time)."""
        execlog.configure(db="/proc/forbidden/x.db")
        assert "/proc/forbidden/x.db" == RECORDER.config.db

    def test_unwritable_path_reported_at_run_time(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Recording into an unwritable path never raises: flush is False and it is logged."""
        target = f"/proc/forbidden/{tmp_path.name}.db"
        execlog.configure(db=target)
        with caplog.at_level(logging.WARNING, logger="execlog"):
            assert 6 == work(3)
            assert execlog.flush(timeout=5) is False
        warnings = [r for r in caplog.records if r.name == "execlog"]
        assert warnings
        assert any(target in r.getMessage() for r in warnings)

    def test_sqlite_url_with_absolute_path(self, tmp_path: Path) -> None:
        """``sqlite:///`` followed by an absolute path records into that file."""
        target = tmp_path / "url.db"
        execlog.configure(db=f"sqlite:///{target}")
        work(2)
        assert ["work"] == _names(target)

    def test_memory_database(self) -> None:
        """``:memory:`` records in memory; ``open_store(":memory:")`` reads it back."""
        execlog.configure(db=":memory:")
        assert 8 == work(4)
        assert execlog.flush(timeout=10)
        with execlog.open_store(":memory:") as store:
            found = store.recent(limit=10)
        assert ["work"] == [e.name for e in found]
        assert {"n": 4} == found[0].inputs
        assert 8 == found[0].output
        assert not Path(":memory:").exists()

    def test_env_db_used_when_not_configured(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """``EXECLOG_DB`` is the default target when ``configure`` was not given ``db``."""
        target = tmp_path / "from-env.db"
        monkeypatch.setenv("EXECLOG_DB", str(target))
        RECORDER.reset()
        execlog.configure(batch_size=4)  # configuring something else keeps the env db
        work(5)
        assert ["work"] == _names(target)
        assert not (tmp_path / "execlog.db").exists()

    def test_configure_db_wins_over_env(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """An explicit ``configure(db=...)`` wins over ``EXECLOG_DB``."""
        monkeypatch.setenv("EXECLOG_DB", str(tmp_path / "env.db"))
        RECORDER.reset()
        explicit = tmp_path / "explicit.db"
        execlog.configure(db=str(explicit))
        work(5)
        assert ["work"] == _names(explicit)
        assert not (tmp_path / "env.db").exists()

    def test_changing_db_flushes_old_database_first(self, tmp_path: Path) -> None:
        """Records made before ``configure(db=B)`` land in A; later ones in B only."""
        first, second = tmp_path / "a.db", tmp_path / "b.db"
        # a long interval and a big batch: nothing is written unless something flushes
        execlog.configure(db=str(first), flush_interval=60.0, batch_size=10_000)
        with execlog.execution("into-a"):
            pass
        execlog.configure(db=str(second))
        with execlog.execution("into-b"):
            pass
        assert ["into-b"] == _names(second)
        conn = sqlite3.connect(first)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM executions")]
        finally:
            conn.close()
        assert ["into-a"] == names

    def test_changing_db_keeps_other_options(self, tmp_path: Path) -> None:
        """Changing ``db`` leaves the other options as they were."""
        execlog.configure(batch_size=33, max_payload_bytes=2048)
        execlog.configure(db=str(tmp_path / "x.db"))
        assert 33 == RECORDER.config.batch_size
        assert 2048 == RECORDER.config.max_payload_bytes


class TestEnabledAndLifecycle:
    def test_disabled_records_nothing(self, db: str) -> None:
        """``enabled=False`` records neither traced calls nor blocks; calls still work."""
        execlog.configure(enabled=False)
        assert 4 == work(2)
        with execlog.execution("off-block") as ex:
            ex.tag(a=1)
        assert execlog.flush(timeout=10)
        execlog.configure(enabled=True)
        with execlog.execution("marker"):
            pass
        assert ["marker"] == _names(db)

    def test_disabled_generator_still_yields(self, db: str) -> None:
        """A traced generator runs normally while recording is off."""

        @execlog.traced_execution
        def produce() -> Any:
            yield from (1, 2, 3)

        execlog.configure(enabled=False)
        assert [1, 2, 3] == list(produce())
        execlog.configure(enabled=True)
        assert [1, 2, 3] == list(produce())
        assert 1 == len(rows(db))

    def test_env_disabled(self, monkeypatch: pytest.MonkeyPatch, db: str) -> None:
        """``EXECLOG_DISABLED=1`` turns recording off."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()
        execlog.configure(db=db)
        assert RECORDER.config.enabled is False
        assert 2 == work(1)
        assert execlog.flush(timeout=10)
        assert not Path(db).exists() or [] == _names(db)

    def test_explicit_enabled_wins_over_env(self, monkeypatch: pytest.MonkeyPatch, db: str) -> None:
        """An explicit ``configure(enabled=True)`` wins over ``EXECLOG_DISABLED``."""
        monkeypatch.setenv("EXECLOG_DISABLED", "1")
        RECORDER.reset()
        execlog.configure(db=db, enabled=True)

        @execlog.traced_execution
        def late(x: int) -> int:
            return x

        assert 1 == late(1)
        assert 2 == work(1)
        with execlog.execution("blk"):
            pass
        assert 3 == len(rows(db))

    def test_recording_after_shutdown_starts_new_writer(self, db: str) -> None:
        """After ``shutdown()`` the next record starts a writer lazily and is stored."""
        work(1)
        execlog.shutdown()
        assert RECORDER.writer is None
        work(2)
        with execlog.execution("after"):
            pass
        found = rows(db)
        assert ["work", "work", "after"] == [r["name"] for r in found]

    def test_shutdown_twice_is_safe(self, db: str) -> None:
        """Calling ``shutdown()`` twice (and flushing after it) is harmless."""
        work(1)
        execlog.shutdown()
        execlog.shutdown()
        assert execlog.flush(timeout=5) is True
        assert ["work"] == _names(db)

    def test_shutdown_without_writer(self) -> None:
        """``shutdown()`` before anything was recorded does nothing and raises nothing."""
        execlog.shutdown()
        execlog.shutdown()
        assert not Path("execlog.db").exists()

    def test_shutdown_persists_without_flush(self, db: str) -> None:
        """``shutdown()`` drains the queue: records are durable without an explicit flush."""
        execlog.configure(flush_interval=60.0, batch_size=10_000)
        for i in range(50):
            work(i)
        execlog.shutdown()
        conn = sqlite3.connect(db)
        try:
            count = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
        finally:
            conn.close()
        assert 50 == count
