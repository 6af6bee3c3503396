"""Handing committed executions to exporters (``configure(export=[...])``), on the writer thread.

After each batch is committed, the writer calls :class:`Exports` with the batch's finished
execution rows and event rows. Events are kept here until their execution's final row comes
by (an execution's events are queued before it ends, possibly batches earlier), then each
exporter gets :class:`~execlog.store.Execution` objects and their events. An exporter that
raises or refuses a batch never affects the store or the program: its losses are counted and
reported once on the ``execlog`` logger.

An exporter is any object with::

    export(executions: Sequence[Execution], events: Mapping[str, Sequence[Event]]) -> bool | None
    force_flush(timeout: float) -> bool        # optional: called by execlog.flush()

An exporter that also has ``export_rows(rows, events)`` (execlog's own) gets the committed rows
and event rows instead, their JSON fields not decoded: what it would encode again anyway.

``export`` must not block on the network (the store's writes wait for it): queue and send on
a thread of its own, as :class:`execlog.otel.OpenTelemetryExporter` does.
"""

from __future__ import annotations

import time
from math import isnan
from typing import TYPE_CHECKING, Any

from execlog._guard import report_once
from execlog.store import Event, Execution

if TYPE_CHECKING:
    from execlog._storage import Row

__all__ = ["MAX_PENDING", "Exports", "force_flush"]

#: Executions whose events wait here for their final row, at most (the oldest go beyond).
MAX_PENDING = 10_000


def _clean(row: Row) -> Row:
    """The row with the hot path's NaN stand-ins for NULL made None."""
    return tuple(None if v.__class__ is float and isnan(v) else v for v in row)


class Exports:
    """The writer's ``on_commit`` hook for one tuple of exporters."""

    def __init__(self, exporters: tuple[Any, ...]) -> None:
        """Hand batches to ``exporters`` (in order)."""
        self.exporters = exporters
        self.pending: dict[str, list[Row]] = {}
        self.lost = 0

    def __call__(self, rows: list[Row], events: list[Row]) -> bool:
        """Export one committed batch; False when some exporter failed or lost something."""
        pending = self.pending
        for event in events:
            pending.setdefault(event[0], []).append(event)
        ok = True
        if len(pending) > MAX_PENDING:
            for key in list(pending)[: len(pending) - MAX_PENDING]:
                del pending[key]
            ok = False
            report_once(
                "execlog: more than %d executions with events still running; the events of "
                "the oldest are not exported",
                MAX_PENDING,
            )
        if not rows:
            return ok
        rows = [_clean(row) for row in rows]
        own_events: dict[str, list[Row]] = {}
        for row in rows:
            own = pending.pop(row[0], None)
            if own:
                own_events[row[0]] = [_clean(e) for e in own]
        decoded: tuple[list[Execution], dict[str, list[Event]]] | None = None
        for exporter in self.exporters:
            export_rows = getattr(exporter, "export_rows", None)
            if export_rows is not None:  # execlog's own exporters take rows as committed
                ok = self._export(export_rows, exporter, len(rows), rows, own_events) and ok
                continue
            if decoded is None:
                decoded = self._decode(rows, own_events)
                ok = ok and len(decoded[0]) == len(rows)
            export = exporter.export
            ok = self._export(export, exporter, len(rows), *decoded) and ok
        return ok

    @staticmethod
    def _decode(
        rows: list[Row], events: dict[str, list[Row]]
    ) -> tuple[list[Execution], dict[str, list[Event]]]:
        """Rows as ``Execution`` objects and their events as ``Event`` objects."""
        executions: list[Execution] = []
        for row in rows:
            try:
                executions.append(Execution.from_row(row))
            except Exception:  # noqa: S112 - a row the store took but that does not decode
                continue
        attached = {key: [Event.from_row(e) for e in value] for key, value in events.items()}
        return executions, attached

    def _export(self, method: Any, exporter: Any, count: int, *args: Any) -> bool:
        try:
            if method(*args) is not False:
                return True
            reason = "it refused the batch"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        self.lost += count
        report_once(
            "execlog could not export executions to %r (%s); the store has them, the exporter "
            "does not (losses are counted)",
            exporter,
            reason,
        )
        return False


def force_flush(exporters: tuple[Any, ...], timeout: float) -> bool:
    """Ask every exporter that can to send what it holds, within ``timeout`` in all."""
    deadline = time.monotonic() + timeout
    ok = True
    for exporter in exporters:
        flush = getattr(exporter, "force_flush", None)
        if flush is None:
            continue
        try:
            ok = bool(flush(max(deadline - time.monotonic(), 0.0))) and ok
        except Exception as exc:
            ok = False
            report_once("execlog: %r failed to flush (%s: %s)", exporter, type(exc).__name__, exc)
    return ok
