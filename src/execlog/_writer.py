"""The batching writer: one daemon thread per process, fed through a bounded deque.

Producers (traced calls) only ``append`` to a ``collections.deque`` and, when a batch is full,
set an ``Event``; they never take a lock the writer holds while writing. The writer wakes every
``flush_interval`` (or when woken), drains up to ``batch_size`` records at a time and commits
each batch in one transaction. A flush request is a marker object placed in the same deque, so
"everything recorded before ``flush()``" is exactly "everything ahead of the marker".
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from execlog._guard import logger, report_once, reset_reported, strict
from execlog._storage import EVENT, Backend, Row, display_db, open_backend, shareable_location
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from execlog._execution import ExecutionHandle

__all__ = ["Channel", "FlushRequest", "Writer"]

_MAX_BACKOFF_S = 5.0
#: Under a backlog one transaction takes up to this many batches.
BACKLOG_FACTOR = 16
#: A failure reported, then healthy this long: the next failure is reported again.
_REARM_AFTER_S = 60.0


class FlushRequest:
    """A marker in the queue; set once everything ahead of it is committed (or failed)."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        """Create an unset marker."""
        self.done = threading.Event()
        self.ok = False

    def resolve(self, ok: bool) -> None:
        """Record the outcome and wake the waiter."""
        self.ok = ok
        self.done.set()


class Channel:
    """What producers and the writer share. Replaced whole in a forked child."""

    __slots__ = (
        "batch_size",
        "capacity",
        "dropped",
        "drops_lock",
        "events",
        "flushes",
        "inflight",
        "limit",
        "live",
        "queue",
        "space",
        "waiters",
        "wake",
        "woken",
    )

    def __init__(self, capacity: int, batch_size: int = 512) -> None:
        """Create an empty channel holding at most ``capacity`` records."""
        self.batch_size = batch_size  # producers wake the writer at this queue length
        self.queue: deque[Row | FlushRequest] = deque()
        # Producers compare len(queue) with `limit`: the capacity less the records the writer
        # has taken out of the queue but not yet committed, so memory stays within capacity.
        self.capacity = capacity
        self.inflight = 0
        self.limit = capacity
        self.wake = threading.Event()
        # True once a producer has set `wake` since the writer last cleared it: the producers
        # past batch_size read this plain attribute instead of calling wake.is_set() (a Python
        # call) with every record while the writer is busy.
        self.woken = False
        self.space = threading.Condition(threading.Lock())
        self.waiters = 0
        # executions begun and not yet ended (a set: identity hashing costs less than an id's)
        self.live: set[ExecutionHandle] = set()
        self.dropped = 0
        self.drops_lock = threading.Lock()
        self.flushes: set[FlushRequest] = set()
        # Set (for good) by the first event recorded: from then on the writer sorts events out
        # of its batches; a program that records none never pays for looking.
        self.events = False

    def wake_writer(self) -> None:
        """Wake the writer, once until it rearms (producers check ``woken`` before calling)."""
        self.woken = True
        self.wake.set()

    def rearm(self) -> None:
        """The writer is awake: clear ``wake`` so that the next producer past batch_size sets it."""
        self.wake.clear()
        self.woken = False

    def request_flush(self) -> FlushRequest:
        """Queue a flush marker behind everything recorded so far and wake the writer."""
        marker = FlushRequest()
        with self.drops_lock:
            self.flushes.add(marker)
        self.queue.append(marker)
        self.wake.set()
        return marker

    def resolve_flushes(
        self, ok: bool, markers: list[FlushRequest] | None = None, *, forget_all: bool = False
    ) -> None:
        """Resolve flush markers.

        With ``markers``: those the writer took out of the queue (they are forgotten). Without:
        every outstanding flush, which stays registered while its marker is still queued (so
        the writer keeps looking for it), unless ``forget_all`` (the queue was emptied).
        """
        with self.drops_lock:
            if markers is None:
                markers = list(self.flushes)
                if forget_all:
                    self.flushes.clear()
            else:
                self.flushes.difference_update(markers)
        for marker in markers:
            marker.resolve(ok)

    def set_capacity(self, capacity: int) -> None:
        """Change the bound (``queue_size``)."""
        self.capacity = capacity
        self.limit = max(capacity - self.inflight, 0)

    def take_inflight(self, count: int) -> None:
        """The writer holds ``count`` records outside the queue (0 when they are settled)."""
        self.inflight = count
        self.limit = max(self.capacity - count, 0)

    def add_dropped(self, count: int) -> None:
        """Count records that were lost (queue full, database unwritable at exit)."""
        with self.drops_lock:
            self.dropped += count

    def take_dropped(self) -> int:
        """Return and reset the count of lost records not yet persisted."""
        with self.drops_lock:
            count, self.dropped = self.dropped, 0
        return count


def _split_events(batch: list[Row]) -> tuple[list[Row], list[Row]]:
    """Execution rows and event rows (their marker taken off) of one batch, in queue order."""
    rows: list[Row] = []
    events: list[Row] = []
    for item in batch:
        if item[0] is EVENT:
            events.append(item[1:])
        else:
            rows.append(item)
    return rows, events


class Writer:
    """The ``execlog-writer`` thread of one process and one database."""

    def __init__(
        self,
        channel: Channel,
        db: str,
        batch_size: int,
        flush_interval: float,
        io_lock: threading.Lock,
        tick: Callable[[], None] | None = None,
        on_commit: Callable[[list[Row], list[Row]], bool] | None = None,
        token: str | None = None,
    ) -> None:
        """Prepare (but do not start) a writer for ``db``.

        ``tick`` runs at each wake-up; ``on_commit`` gets each committed batch's execution
        rows and event rows (the exporters) and returns False when some could not be handed on.
        """
        self.channel = channel
        self.db = db
        self.where = display_db(db)  # for messages: never a password
        self.token = token
        #: ``db`` as a child process can use it (``inject()``): a relative path is resolved
        #: now, against the directory the writer opens it from.
        self.location = shareable_location(db)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.io_lock = io_lock
        self.tick = tick
        self.on_commit = on_commit
        self.export_lost = False  # an exporter failed since the last flush marker
        self.backend: Backend | None = None
        self.stopping = False
        self.failing = False
        self.healthy_since = time.monotonic()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="execlog-writer", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        wake = self.channel.wake
        while True:
            if backoff:
                self._wait_backoff(backoff)
            else:
                wake.wait(self.flush_interval)
            self.channel.rearm()
            if self.tick is not None:
                self.tick()
            stopping = self.stopping
            # At shutdown, write what is queued now, not what producers (daemon threads at
            # interpreter exit) keep adding: stopping must not chase them for ever.
            ok = self._drain(len(self.channel.queue) if stopping else None)
            if ok:
                backoff = 0.0
            else:
                backoff = min(max(backoff * 2, 0.1), _MAX_BACKOFF_S)
            if stopping:
                if not ok:
                    self._give_up()
                break
        self._close()

    def _wait_backoff(self, backoff: float) -> None:
        """Sleep before retrying a failed database; only stop or flush() cut it short."""
        deadline = time.monotonic() + backoff
        channel = self.channel
        while not self.stopping and not channel.flushes:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            channel.wake.wait(left)
            channel.rearm()

    def _drain(self, max_rows: int | None = None) -> bool:
        """Write what is queued, batch by batch (at most ``max_rows`` rows when given).

        Returns False when the database failed.
        """
        queue = self.channel.queue
        running_due = True
        taken = 0
        # At shutdown, few large transactions: busy threads make every GIL hand-off slow.
        batch_size = self.batch_size if max_rows is None else max(self.batch_size, 10_000)
        while True:
            if max_rows is None and self.stopping:
                # stop() came during a regular drain: finish what is queued now, in large
                # transactions, instead of chasing producers.
                max_rows = taken + len(queue)
                batch_size = max(self.batch_size, 10_000)
            if max_rows is not None and taken >= max_rows:
                return True
            # Behind by more than a batch (busy threads make every GIL hand-off slow, and each
            # transaction costs a few): take up to BACKLOG_FACTOR batches in one transaction,
            # never more than a tenth of queue_size (rows taken count against the bound).
            backlog = min(len(queue), batch_size * BACKLOG_FACTOR, self.channel.capacity // 10)
            batch, markers = self._take(max(batch_size, backlog))
            self.channel.take_inflight(len(batch))
            taken += len(batch) or 1
            running: list[tuple[ExecutionHandle, Row]] = []
            if running_due or markers:
                running = self._running_rows()
                running_due = False
            dropped = self.channel.take_dropped()
            if not (batch or markers or running or dropped):
                return True
            rows, events = _split_events(batch) if self.channel.events else (batch, [])
            ok = self._write(rows, [r for _, r in running], dropped, events)
            on_commit = self.on_commit
            if ok and on_commit is not None and (rows or events) and not on_commit(rows, events):
                self.export_lost = True
            if not ok:
                queue.extendleft(reversed(batch))
                for handle, _ in running:
                    if handle._state == 1:  # still running: its running row is still unwritten
                        handle._running_written = False
            self.channel.take_inflight(0)
            if self.channel.waiters:
                with self.channel.space:
                    self.channel.space.notify_all()
            if not ok:
                self.channel.add_dropped(dropped)
                self.channel.resolve_flushes(ok=False, markers=markers)
                self.channel.resolve_flushes(ok=False)
                return False
            if markers:
                # flush() is True only when everything was also handed to every exporter
                self.channel.resolve_flushes(ok=not self.export_lost, markers=markers)
                self.export_lost = False

    def _take(self, batch_size: int) -> tuple[list[Row], list[FlushRequest]]:
        """Pop up to ``batch_size`` rows, stopping after a flush marker."""
        queue = self.channel.queue
        batch: list[Row] = []
        markers: list[FlushRequest] = []
        popleft = queue.popleft
        append = batch.append
        count = min(len(queue), batch_size)
        if not self.channel.flushes:
            # flush() registers its marker before queueing it: with none registered after
            # `count` was taken, none is among those first `count` items, so take them
            # without looking at each one.
            try:
                for _ in range(count):
                    append(popleft())  # type: ignore[arg-type]
            except IndexError:  # another writer (one being shut down) took some
                pass
            return batch, markers
        try:
            while len(batch) < batch_size:
                item = popleft()
                if type(item) is FlushRequest:
                    markers.append(item)
                    break
                append(item)  # type: ignore[arg-type]
        except IndexError:
            pass
        return batch, markers

    def _running_rows(self) -> list[tuple[ExecutionHandle, Row]]:
        """``running`` rows for live executions not yet shown, each marked as written now.

        Marked before the write, not after it: an execution ending while the write is in
        progress must queue its final row as final (beyond the bound if need be), or a full
        queue could drop it and leave the ``running`` row for ever.
        """
        rows = []
        for handle in self.channel.live.copy():
            if not handle._running_written:
                # Marked first: an end seen after this queues its row as final; one before it
                # leaves _running_row() nothing to return (the flag then means nothing).
                handle._running_written = True
                row = handle._running_row()
                if row is not None:
                    rows.append((handle, row))
        return rows

    def _write(self, rows: list[Row], running: list[Row], dropped: int, events: list[Row]) -> bool:
        try:
            with self.io_lock:
                if self.backend is None:
                    self.backend = open_backend(self.db, self.token)
                    self.backend.abandon_dead()
                if self.backend.replaced():
                    self._reopen_replaced()
                if events:
                    skipped = self.backend.write(rows, running, dropped, events)
                else:  # the three-argument call every backend has taken since the first
                    skipped = self.backend.write(rows, running, dropped)
        except Exception as exc:
            if (
                strict()
                and not isinstance(exc, (OSError, StoreError))
                and "sqlite" not in type(exc).__module__
            ):
                raise
            if not self.failing:
                self.failing = True
                if time.monotonic() - self.healthy_since > _REARM_AFTER_S:
                    reset_reported()  # a new problem after a long healthy spell: say it again
                report_once(
                    "execlog cannot write to %s (%s: %s); keeping records in memory and retrying",
                    self.where,
                    type(exc).__name__,
                    exc,
                )
            self._reset_backend()
            return False
        if skipped:
            self.channel.add_dropped(skipped)
            report_once(
                "execlog could not store %d record(s) in %s: values the database cannot take; "
                "they are counted as dropped",
                skipped,
                self.where,
            )
        if self.failing:
            self.failing = False
            self.healthy_since = time.monotonic()
            logger.info("execlog writes to %s again", self.where)
        return True

    def _reopen_replaced(self) -> None:
        """The file was deleted or replaced under us: say so once and write to the new one."""
        report_once(
            "execlog's database %s was deleted or replaced while open; recording into a new "
            "file at that path (what the old file held is gone with it)",
            self.where,
        )
        self._reset_backend()
        self.backend = open_backend(self.db, self.token)

    def _reset_backend(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:  # noqa: S110 - a broken connection is dropped either way
                pass

    def _give_up(self) -> None:
        """At shutdown with a failing database: count what could not be written."""
        lost = sum(1 for item in self.channel.queue if type(item) is not FlushRequest)
        self.channel.queue.clear()
        self.channel.resolve_flushes(ok=False, forget_all=True)
        if lost:
            self.channel.add_dropped(lost)
            report_once(
                "execlog lost %d records: %s could not be written at shutdown", lost, self.where
            )

    def _close(self) -> None:
        with self.io_lock:
            self._reset_backend()

    # -- control -------------------------------------------------------------------------

    def stop(self, timeout: float) -> bool:
        """Drain, close and join; return False if the thread is still alive after ``timeout``."""
        self.stopping = True
        self.channel.wake.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        return not self.thread.is_alive()

    def write_here(self) -> None:
        """Write what is queued on the calling thread, then close.

        The final flush when no writer thread could be started: Python 3.12+ starts no threads
        once the interpreter is exiting (a program's atexit handler recording first).
        """
        self.stopping = True
        if not self._drain(len(self.channel.queue)):
            self._give_up()
        self._close()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the inherited connection without touching it."""
        backend, self.backend = self.backend, None
        if backend is not None:
            abandon = getattr(backend, "abandon", None)
            if abandon is not None:
                abandon()
