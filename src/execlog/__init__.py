"""execlog: a persistent, queryable execution history for Python workflows.

Decorate functions with :func:`traced_execution` or wrap blocks in :func:`execution`; every
call is recorded (inputs, output, duration, error, lineage) to SQLite by a background writer,
and read back with :func:`open_store` or the ``execlog`` command.

Only the names in ``__all__`` are public. Modules whose names start with an underscore are
internal: they may change in any release without notice.

PYTEST_DONT_REWRITE: the package registers a pytest plugin (``execlog.testing``), so pytest
would rewrite its asserts, and warn when it was imported first (by a ``sitecustomize``, a
wrapper script, a plugin importing instrumented code), which a ``filterwarnings = error`` suite
cannot start with. This marker in the package docstring tells pytest to leave it alone.
"""

from __future__ import annotations

from typing import Any

from execlog._context import current_execution, propagate
from execlog._decorator import traced_execution
from execlog._events import event
from execlog._execution import ExecutionHandle, execution
from execlog._propagation import PropagationContext, extract, inject
from execlog._recorder import RECORDER as _RECORDER
from execlog.exceptions import (
    AmbiguousIdError,
    ConfigError,
    ExeclogError,
    SchemaError,
    StoreError,
    StoreNotFoundError,
)
from execlog.store import Event, Execution, Lineage, Stats, Store, open_store

__all__ = [
    "AmbiguousIdError",
    "ConfigError",
    "Event",
    "ExeclogError",
    "Execution",
    "ExecutionHandle",
    "Lineage",
    "PropagationContext",
    "SchemaError",
    "Stats",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "configure",
    "current_execution",
    "event",
    "execution",
    "extract",
    "flush",
    "inject",
    "instrument_threads",
    "open_store",
    "propagate",
    "shutdown",
    "traced_execution",
    "uninstrument_threads",
]

configure = _RECORDER.configure
flush = _RECORDER.flush
shutdown = _RECORDER.shutdown


def instrument_threads() -> None:
    """Make threads and pools carry the submitting execution (idempotent).

    Work submitted to ``concurrent.futures`` and ``multiprocessing`` pools, run with
    ``loop.run_in_executor``, or in a ``threading.Thread`` started from inside an execution
    nests under that execution, pools created before the call included (API.md section 7).
    The standard library's pool modules are imported only here, not by ``import execlog``.

    .. versionadded:: 0.2.0
    """
    from execlog._pools import instrument_threads as instrument  # noqa: PLC0415 - lazy

    instrument()


def uninstrument_threads() -> None:
    """Undo :func:`instrument_threads`: pools and threads, old or new, carry nothing again.

    .. versionadded:: 0.2.0
    """
    import sys  # noqa: PLC0415

    pools = sys.modules.get("execlog._pools")
    if pools is not None:
        pools.uninstrument_threads()


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            return version("execlog")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0+unknown"
    msg = f"module 'execlog' has no attribute {name!r}"
    raise AttributeError(msg)
