"""The process-wide recorder: configuration, the producer side of the queue, the writer's life.

``configure``, ``flush`` and ``shutdown`` of the public API are bound methods of the one default
:class:`Recorder`. The hot path is :meth:`Recorder.enqueue`: a length check and a
``deque.append``; the writer is woken only when a batch is full.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from execlog import _clock, _config, _ids
from execlog._encoding import Encoder, Redactor
from execlog._export import Exports, force_flush
from execlog._guard import logger, report_once
from execlog._storage.sqlite import BUSY_TIMEOUT_S, HOST
from execlog._writer import Channel, Writer

if TYPE_CHECKING:
    from collections.abc import Callable

    from execlog._execution import ExecutionHandle
    from execlog._storage import Row

__all__ = ["RECORDER", "Recorder"]


def _weak(method: Callable[[], None]) -> Callable[[], None]:
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


class Recorder:
    """Owns the configuration, the queue and the writer thread of this process."""

    # Slots, not a __dict__: the C fast path (execlog._speedups) reads these directly.
    __slots__ = (
        "__weakref__",
        "_fork_io_held",
        "_io_lock",
        "_lock",
        "_mp_finalizer_pid",
        "channel",
        "clock_offset",
        "config",
        "config_generation",
        "enabled",
        "enabled_explicit",
        "encoder",
        "exiting",
        "exports",
        "generation",
        "host",
        "lost_at_exit",
        "pid",
        "writer",
    )

    def __init__(self, config: _config.Config | None = None) -> None:
        """Create a recorder; its writer starts with the first record."""
        self.config = config or _config.from_env()
        self.enabled = self.config.enabled
        self.enabled_explicit = False
        self.generation = 0  # bumped in a forked child: handles from before belong to the parent
        self.config_generation = 0
        self.pid = os.getpid()
        self.host = HOST
        #: wall time = monotonic reading + clock_offset (ns); see _clock
        self.clock_offset = _clock.anchor()
        self.encoder = self._make_encoder()
        self.channel = Channel(self.config.queue_size, self.config.batch_size)
        self.writer: Writer | None = None
        #: The writer's export hook for ``config.export`` (None without exporters).
        self.exports: Exports | None = None
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._fork_io_held = False
        # Registered now, at import: atexit runs handlers last-registered-first, so a program's
        # own exit handlers (registered after `import execlog`) still record before the final
        # flush.
        atexit.register(_weak(self._at_exit))
        self._mp_finalizer_pid = 0
        # Set by the atexit hook: from then on new records are counted, not queued, so that
        # daemon threads still recording cannot keep the final flush (or exit) waiting.
        self.exiting = False
        self.lost_at_exit = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=_weak(self._before_fork),
                after_in_parent=_weak(self._after_fork_parent),
                after_in_child=_weak(self._after_fork_child),
            )

    def _make_encoder(self, extra_redact: tuple[str, ...] = ()) -> Encoder:
        config = self.config
        return Encoder(
            config.max_payload_bytes,
            Redactor((*config.redact, *extra_redact), config.redact_exempt),
        )

    # -- public API (bound into execlog/__init__.py) -----------------------------------------

    def configure(self, **options: Any) -> None:
        """Change configuration; only the given options change.

        Example::

            execlog.configure(db="runs.db", batch_size=1024, redact=("ssn",))

        Args:
            **options: ``db``, ``batch_size``, ``flush_interval``, ``queue_size``, ``on_full``,
                ``capture_inputs``, ``capture_output``, ``max_payload_bytes``, ``redact``,
                ``enabled``, ``token``, ``export``, ``sample_rate``, ``always_record_errors``
                (API.md section 4).

        Raises:
            ConfigError: a value is invalid (a ``ValueError`` naming the option); nothing of the
                call is applied.

        .. versionadded:: 0.1.0
        """
        new = _config.validated(self.config, options)
        restart = (
            new.db != self.config.db
            or new.batch_size != self.config.batch_size
            or new.flush_interval != self.config.flush_interval
            or new.token != self.config.token
        )
        if restart and self.writer is not None:
            self.flush()
            self.shutdown()
        self.config = new
        if "export" in options:
            self.exports = Exports(new.export) if new.export else None
        self.channel.set_capacity(new.queue_size)
        self.channel.batch_size = new.batch_size
        self.encoder = self._make_encoder()
        self.config_generation += 1
        if "enabled" in options:
            self.enabled_explicit = True
        self.enabled = new.enabled

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded before this call is committed.

        Example::

            assert execlog.flush(timeout=5.0)

        Executions still running are written as ``running`` rows.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            True when everything recorded before the call is durable; False on timeout or
            when the database cannot be written.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is NaN.

        .. versionadded:: 0.1.0
        """
        timeout = _config.timeout_seconds("timeout", timeout)
        channel = self.channel
        exports = self.exports
        if self.writer is None and not channel.queue and not channel.live:
            return exports is None or force_flush(exports.exporters, max(timeout, 0.0))
        deadline = time.monotonic() + max(timeout, 0.0)
        marker = channel.request_flush()
        self._ensure_writer()
        if not marker.done.wait(timeout):
            return False
        if exports is not None:
            # handed to every exporter: now sent by each (within what is left of the timeout)
            flushed = force_flush(exports.exporters, max(deadline - time.monotonic(), 0.0))
            return marker.ok and flushed
        return marker.ok

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush and stop the writer thread; safe to call more than once.

        Recording after ``shutdown()`` starts a new writer.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is NaN.

        .. versionadded:: 0.1.0
        """
        timeout = _config.timeout_seconds("timeout", timeout)
        with self._lock:
            writer, self.writer = self.writer, None
        if writer is None:
            return
        if not writer.stop(timeout):
            logger.warning("execlog writer did not stop within %.1fs", timeout)
        exports = self.exports
        if exports is not None:
            force_flush(exports.exporters, min(timeout, 5.0))

    def reset(self) -> None:
        """Stop the writer and return to the configuration a new process starts with (tests)."""
        self.shutdown()
        self.config = _config.from_env()
        self.enabled = self.config.enabled
        self.enabled_explicit = False
        self.encoder = self._make_encoder()
        self.config_generation += 1
        self.exports = None
        self.channel = Channel(self.config.queue_size, self.config.batch_size)

    # -- the hot path ---------------------------------------------------------------------

    def track(self, handle: ExecutionHandle) -> None:
        """Register a live execution (the writer shows it as ``running`` until it ends)."""
        self.channel.live.add(handle)
        if self.writer is None and not self.exiting:
            self._ensure_writer()

    def enqueue(self, row: Row, *, final: bool = False) -> None:
        """Hand a finished record to the writer (never does I/O).

        ``final``: the row completes one already written as ``running``; it is always queued
        (beyond the bound if need be), or the execution would stay ``running`` for ever.
        """
        channel = self.channel
        queue = channel.queue
        if self.exiting:
            self.lost_at_exit += 1  # made by a daemon thread while the interpreter exits
            self._park()
            return
        if self.writer is None:
            self._ensure_writer()
        if (len(queue) >= channel.limit or channel.waiters) and not final:
            self._enqueue_full(row)
        else:
            queue.append(row)
        if len(queue) >= channel.batch_size and not channel.woken:
            channel.wake_writer()

    def _enqueue_full(self, row: Row) -> None:
        """The queue is full (or others are waiting): drop, or wait for room in turn."""
        channel = self.channel
        config = self.config
        if config.on_full == "drop":
            if len(channel.queue) < channel.limit:
                channel.queue.append(row)
                return
            channel.add_dropped(1)
            report_once(
                "execlog queue is full (queue_size=%d): dropping records (on_full='drop'); "
                "the count is stored in the database",
                config.queue_size,
            )
            return
        channel.wake.set()
        give_up = config.flush_interval * 50
        deadline = time.monotonic() + give_up
        with channel.space:
            # While anyone waits here, new records come here too (see `waiters` on the fast
            # paths), so that running threads cannot take every slot the writer frees before a
            # woken waiter gets the GIL. The writer wakes all waiters once per batch it frees.
            channel.waiters += 1
            try:
                while len(channel.queue) >= channel.limit:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        channel.add_dropped(1)
                        report_once(
                            "execlog queue stayed full for %.1fs (the database is not keeping "
                            "up or cannot be written): records are being lost and counted",
                            give_up,
                        )
                        return
                    channel.space.wait(min(left, config.flush_interval))
                channel.queue.append(row)
            finally:
                channel.waiters -= 1

    def _park(self) -> None:
        """During interpreter exit, stop a daemon thread that keeps recording.

        Only daemon threads run after ``threading`` joined the others, and the interpreter is
        about to stop them anyway; parking them a little earlier lets the final flush have the
        GIL to itself instead of racing them. The main thread is never parked.
        """
        if threading.current_thread() is not threading.main_thread():
            _PARKED.wait()

    def _ensure_writer(self) -> None:
        if self.exiting:
            self._park()
            return
        with self._lock:
            if self.writer is not None:
                return
            writer = self._new_writer()
            try:
                writer.start()
            except RuntimeError as exc:
                # At interpreter exit (an atexit handler of the program recording): Python
                # 3.12+ starts no more threads; the final flush then writes on its own thread.
                if "shutdown" not in str(exc):
                    report_once("execlog cannot start its writer thread (%s)", exc)
                return
            self.writer = writer
            self._register_multiprocessing_exit()

    def _new_writer(self) -> Writer:
        """A writer (not started) for the current configuration and channel."""
        config = self.config
        return Writer(
            self.channel,
            config.db,
            config.batch_size,
            config.flush_interval,
            self._io_lock,
            tick=self._check_clock,
            on_commit=self._on_commit,
            token=config.token,
        )

    def _on_commit(self, rows: list[Row], events: list[Row]) -> bool:
        """A batch is committed: hand it to the exporters, if any (writer thread)."""
        exports = self.exports
        return True if exports is None else exports(rows, events)

    def _check_clock(self) -> None:
        """Anchor the clock again if the wall clock was set (writer thread, each wake-up)."""
        if _clock.drifted(self.clock_offset):
            self.clock_offset = _clock.anchor()

    def _register_multiprocessing_exit(self) -> None:
        """Flush at the end of a ``multiprocessing`` child, which skips ``atexit``."""
        if self._mp_finalizer_pid == self.pid or "multiprocessing" not in sys.modules:
            return
        from multiprocessing import util  # noqa: PLC0415 - only when multiprocessing is in use

        util.Finalize(None, _weak(self._at_exit), exitpriority=100)
        self._mp_finalizer_pid = self.pid

    def _at_exit(self) -> None:
        try:
            self.exiting = True
            self.channel.set_capacity(0)  # producers take the slow path, which now only counts
            had_writer = self.writer is not None
            self.shutdown()
            if not had_writer and (self.channel.queue or self.channel.live):
                self._new_writer().write_here()
            if self.lost_at_exit:
                logger.info(
                    "execlog: %d record(s) made by threads still running during interpreter "
                    "exit were not written",
                    self.lost_at_exit,
                )
        except Exception:  # pragma: no cover - never break interpreter exit
            logger.exception("execlog failed to flush at exit")

    # -- fork -----------------------------------------------------------------------------

    def _before_fork(self) -> None:
        # Wait (briefly) until the writer is outside SQLite, so that no SQLite mutex is held
        # by a thread that will not exist in the child.
        self._fork_io_held = self._io_lock.acquire(timeout=BUSY_TIMEOUT_S * 3)

    def _after_fork_parent(self) -> None:
        if self._fork_io_held:
            self._fork_io_held = False
            self._io_lock.release()

    def _after_fork_child(self) -> None:
        self._fork_io_held = False
        self._io_lock = threading.Lock()
        self._lock = threading.Lock()
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.forget_after_fork()
        self.channel = Channel(self.config.queue_size, self.config.batch_size)
        self.generation += 1
        self.pid = os.getpid()
        self.clock_offset = _clock.anchor()
        _ids.reseed()


_PARKED = threading.Event()  # never set
RECORDER = Recorder()
