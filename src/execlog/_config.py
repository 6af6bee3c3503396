"""Configuration: one frozen value, validated as a whole before any of it is applied."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import numbers
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from execlog.exceptions import ConfigError

__all__ = [
    "DEFAULT_DB",
    "MAX_FLUSH_INTERVAL",
    "MAX_SIZE",
    "Config",
    "env_disabled",
    "from_env",
    "names_option",
    "sample_rate_option",
    "timeout_seconds",
    "validated",
]

DEFAULT_DB = "./execlog.db"

OnFull = Literal["block", "drop"]


@dataclass(frozen=True, slots=True)
class Config:
    """The recorder's settings; replaced whole by ``configure()``."""

    db: str = DEFAULT_DB
    batch_size: int = 512
    flush_interval: float = 0.2
    queue_size: int = 100_000
    on_full: OnFull = "block"
    capture_inputs: bool = True
    capture_output: bool = True
    max_payload_bytes: int = 65_536
    redact: tuple[str, ...] = ()
    redact_exempt: tuple[str, ...] = ()
    enabled: bool = True
    #: Exporters the writer hands every finished execution to (``configure(export=[...])``).
    export: tuple[Any, ...] = ()
    token: str | None = dataclasses.field(default=None, repr=False)
    #: The share of root executions recorded (head sampling); their descendants follow them.
    sample_rate: float = 1.0
    #: Record a failing execution of an unsampled tree, and its ancestors up to the root.
    always_record_errors: bool = False

    def __repr__(self) -> str:
        """The settings, with any password in ``db`` masked."""
        from execlog._storage import display_db  # noqa: PLC0415 - avoids an import cycle

        values = ", ".join(
            f"{f.name}={(display_db(self.db) if f.name == 'db' else getattr(self, f.name))!r}"
            for f in dataclasses.fields(self)
        )
        return f"Config({values})"


_FIELDS = frozenset(f.name for f in dataclasses.fields(Config))


def env_disabled() -> bool:
    """Whether ``EXECLOG_DISABLED`` asks for recording to be off."""
    return os.environ.get("EXECLOG_DISABLED", "").strip().lower() in {"1", "true", "yes", "on"}


#: Default horizon after which a ``running`` row of another host counts as abandoned: never.
#: Opening a database does not rewrite other hosts' rows unless asked to.
DEFAULT_ABANDON_AFTER_S = 0.0


def abandon_horizon_s() -> float:
    """``EXECLOG_ABANDON_AFTER`` in seconds (0, the default: never)."""
    raw = os.environ.get("EXECLOG_ABANDON_AFTER", "").strip()
    if not raw:
        return DEFAULT_ABANDON_AFTER_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        from execlog._guard import report_once  # noqa: PLC0415 - avoids an import cycle

        report_once(
            "EXECLOG_ABANDON_AFTER must be a number of seconds >= 0, got %r; using %d",
            raw,
            int(DEFAULT_ABANDON_AFTER_S),
        )
        return DEFAULT_ABANDON_AFTER_S
    return value


def from_env() -> Config:
    """The starting configuration: the defaults and what the environment says.

    ``EXECLOG_DB``, ``EXECLOG_DISABLED``, ``EXECLOG_TOKEN`` and ``EXECLOG_SAMPLE_RATE``.
    """
    db = os.environ.get("EXECLOG_DB") or DEFAULT_DB
    return Config(
        db=db,
        enabled=not env_disabled(),
        token=os.environ.get("EXECLOG_TOKEN") or None,
        sample_rate=env_sample_rate(),
    )


def env_sample_rate() -> float:
    """``EXECLOG_SAMPLE_RATE`` (a number from 0 to 1); 1.0 when unset or not such a number."""
    raw = os.environ.get("EXECLOG_SAMPLE_RATE", "").strip()
    if not raw:
        return 1.0
    try:
        return sample_rate_option("EXECLOG_SAMPLE_RATE", float(raw))
    except ValueError:
        from execlog._guard import report_once  # noqa: PLC0415 - avoids an import cycle

        report_once("EXECLOG_SAMPLE_RATE must be a number from 0 to 1, got %r; using 1.0", raw)
        return 1.0


#: Upper bound of ``batch_size``, ``queue_size`` and ``max_payload_bytes``: SQLite's own limit
#: on the size of one value (``SQLITE_MAX_LENGTH``), and far beyond any useful batch or queue.
MAX_SIZE = 1_000_000_000
#: Upper bound of ``flush_interval`` (seconds, about 115 days): the writer waits on it, and a
#: full queue on 50 times it, and the wait of a lock must stay within ``threading.TIMEOUT_MAX``.
MAX_FLUSH_INTERVAL = 10_000_000.0


def _positive_int(option: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ConfigError(f"{option} must be a positive int, got {value!r}")
    if value > MAX_SIZE:
        raise ConfigError(f"{option} must be at most {MAX_SIZE:_}, got {value!r}")
    return value


def timeout_seconds(option: str, value: object) -> float:
    """A timeout argument (``flush``, ``shutdown``) as seconds a lock can wait.

    Negative means do not wait; a very long one (even ``math.inf``) waits as long as a lock
    can (``threading.TIMEOUT_MAX``, centuries).

    Raises:
        TypeError: not a real number.
        ValueError: NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{option} must be a number of seconds, got {value!r}"
        raise TypeError(msg)
    seconds = float(value)
    if math.isnan(seconds):
        msg = f"{option} must be a number of seconds, got {value!r}"
        raise ValueError(msg)
    return min(max(seconds, 0.0), threading.TIMEOUT_MAX)


def _flag(option: str, value: object) -> bool:
    if type(value) is not bool:
        raise ConfigError(f"{option} must be True or False, got {value!r}")
    return value


def _check(option: str, value: Any) -> Any:  # noqa: PLR0911 - one branch per option
    if option == "db":
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, bytes) or not isinstance(value, str) or not value.strip():
            raise ConfigError(f"db must be a non-empty str or os.PathLike, got {value!r}")
        _check_db_scheme(value)
        return value
    if option in {"batch_size", "queue_size", "max_payload_bytes"}:
        return _positive_int(option, value)
    if option == "flush_interval":
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not float(value) > 0
            or not float(value) <= MAX_FLUSH_INTERVAL
        ):
            raise ConfigError(
                "flush_interval must be a positive number of seconds, at most "
                f"{MAX_FLUSH_INTERVAL:_.0f}, got {value!r}"
            )
        return float(value)
    if option == "on_full":
        if value not in ("block", "drop") or not isinstance(value, str):
            raise ConfigError(f"on_full must be 'block' or 'drop', got {value!r}")
        return value
    if option in {"capture_inputs", "capture_output", "enabled", "always_record_errors"}:
        return _flag(option, value)
    if option == "sample_rate":
        return sample_rate_option(option, value)
    if option in {"redact", "redact_exempt"}:
        return names_option(option, value)
    if option == "export":
        return _exporters(value)
    if option == "token":
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError("token must be a non-empty str or None")
        return value
    raise ConfigError(f"unknown option {option!r}")  # pragma: no cover - filtered by caller


def _exporters(value: object) -> tuple[Any, ...]:
    """``export=``: None, one exporter or an iterable of them (objects with ``export``).

    An OpenTelemetry ``SpanExporter`` given as it is gets wrapped in
    :class:`execlog.otel.OpenTelemetryExporter`.
    """
    if value is None:
        return ()
    if callable(getattr(value, "export", None)):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes, Mapping)):
        raise ConfigError(f"export must be a list of exporters, got {value!r}")
    exporters = tuple(_exporter(e) for e in value)
    for exporter in exporters:
        if not callable(getattr(exporter, "export", None)):
            raise ConfigError(
                f"export: {exporter!r} is not an exporter (it has no export() method); wrap an "
                "OpenTelemetry SpanExporter in execlog.otel.OpenTelemetryExporter"
            )
    return exporters


def _exporter(exporter: object) -> object:
    """A bare OpenTelemetry ``SpanExporter`` wrapped; anything else as it is."""
    sdk = sys.modules.get("opentelemetry.sdk.trace.export")
    if sdk is not None and isinstance(exporter, sdk.SpanExporter):
        from execlog.otel import OpenTelemetryExporter  # noqa: PLC0415 - only with OTel

        return OpenTelemetryExporter(exporter)
    return exporter


def sample_rate_option(option: str, value: object) -> float:
    """A sampling rate: a real number from 0 (record no tree) to 1 (record every tree)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ConfigError(f"{option} must be a number from 0.0 to 1.0, got {value!r}")
    return float(value)


def names_option(option: str, value: object) -> tuple[str, ...]:
    """A str or an iterable of non-empty str (``redact=``, ``exclude=``...) as a tuple."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise ConfigError(f"{option} must be an iterable of str, got {value!r}")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{option} must contain only non-empty str, got {value!r}")
    return tuple(str(n) for n in names)


_KNOWN_SCHEMES = ("file:",)

#: URL schemes with a backend: SQLite, and PostgreSQL (extra ``execlog[postgres]``).
POSTGRES_SCHEMES = ("postgresql", "postgres")


def _check_db_scheme(db: str) -> None:
    """Reject a URL whose scheme no backend of this version handles."""
    if "://" not in db:
        return
    scheme = db.split("://", 1)[0].lower()
    if scheme in {"sqlite", "http", "https"}:
        return
    if scheme in POSTGRES_SCHEMES:
        if importlib.util.find_spec("psycopg") is None:
            raise ConfigError(
                "db: a PostgreSQL URL needs the psycopg driver: pip install 'execlog[postgres]'"
            )
        return
    from execlog._storage import display_db  # noqa: PLC0415 - avoids an import cycle

    raise ConfigError(
        f"db: unsupported URL scheme {scheme!r} in {display_db(db)!r}; this version records "
        "to SQLite (a file path, 'sqlite:///path' or ':memory:'), to PostgreSQL "
        "('postgresql://user@host:port/dbname') or to a collector ('http://host:port')"
    )


def validated(current: Config, options: dict[str, Any]) -> Config:
    """Return ``current`` updated with ``options``; raise before applying anything if one is bad."""
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    checked = {name: _check(name, value) for name, value in options.items()}
    return dataclasses.replace(current, **checked)
