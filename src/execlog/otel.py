"""OpenTelemetry export: every finished execution as a span, through any ``SpanExporter``.

Example::

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from execlog.otel import OpenTelemetryExporter

    execlog.configure(export=[OpenTelemetryExporter(OTLPSpanExporter())])

Needs the ``otel`` extra (``pip install 'execlog[otel]'``): this module imports OpenTelemetry's
SDK, ``import execlog`` never does.

The mapping (one span per execution; see the README for the full table):

- trace id from the correlation id, span id from the execution id, parent span from the parent
  execution (:mod:`execlog._trace_ids`), so an execution exported twice is the same span and a
  ``traceparent`` from ``execlog.inject(style="w3c")`` names it;
- start and end times; status ``ERROR`` with the message for ``error`` (other statuses leave it
  unset and are kept in ``execlog.status``); an ``exception`` event with ``exception.type``,
  ``exception.message`` and ``exception.stacktrace``;
- ``execlog.inputs``/``execlog.output``/``execlog.tags`` as JSON text (bounded), every other
  field under ``execlog.``, and OpenTelemetry's names where one exists (``code.function.name``,
  ``process.pid``, ``thread.id``, ``host.name``, ``error.type``);
- the execution's events (``execlog.event``, log records) as span events;
- a root that joined an OpenTelemetry span (tags ``otel.trace_id``/``otel.span_id``) links to it;
- the resource (``service.name`` ...) is the one given, else the global ``TracerProvider``'s,
  else ``Resource.create()`` (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from execlog._guard import report_once
from execlog._otel_spans import span_of_row, to_span

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opentelemetry.sdk.trace import ReadableSpan

    from execlog.store import Event, Execution

__all__ = ["OpenTelemetryExporter", "to_span"]


def _default_resource() -> Resource:
    provider = trace_api.get_tracer_provider()
    resource = getattr(provider, "resource", None)
    return resource if isinstance(resource, Resource) else Resource.create()


def _scope() -> InstrumentationScope:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        release = version("execlog")
    except PackageNotFoundError:  # pragma: no cover - a source tree
        release = "0+unknown"
    return InstrumentationScope("execlog", release)


class OpenTelemetryExporter:
    """Export every finished execution as an OpenTelemetry span through ``span_exporter``.

    Example::

        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        execlog.configure(export=[OpenTelemetryExporter(OTLPSpanExporter())])

    The writer hands spans over after each committed batch without waiting: they queue here
    (at most ``max_queue_size``) and a daemon thread, ``execlog-otel``, sends them in batches
    of ``max_batch_size``, so a slow or unreachable collector never holds up the store or the
    program. What is lost (queue full, the exporter failing or raising) is counted in
    :attr:`lost` and reported once on the ``execlog`` logger. ``execlog.flush(timeout)`` waits
    for this exporter too, within its timeout.

    Args:
        span_exporter: Any OpenTelemetry ``SpanExporter``: OTLP over HTTP or gRPC, console,
            the SDK's ``InMemorySpanExporter``...
        resource: The spans' resource; default: the global ``TracerProvider``'s when it has
            one, else ``Resource.create()``.
        max_queue_size: Spans waiting to be sent, at most.
        max_batch_size: Spans per ``export()`` call.
        max_attribute_bytes: Bound of each JSON attribute (inputs, output, tags, event data).

    Raises:
        ValueError: a size is not a positive int (the message names it).

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        span_exporter: SpanExporter,
        *,
        resource: Resource | None = None,
        max_queue_size: int = 8192,
        max_batch_size: int = 512,
        max_attribute_bytes: int = 8192,
    ) -> None:
        """Wrap ``span_exporter``; nothing is started until the first export."""
        for option, value in (
            ("max_queue_size", max_queue_size),
            ("max_batch_size", max_batch_size),
            ("max_attribute_bytes", max_attribute_bytes),
        ):
            if type(value) is not int or value <= 0:
                msg = f"{option} must be a positive int, got {value!r}"
                raise ValueError(msg)
        if not callable(getattr(span_exporter, "export", None)):
            msg = f"span_exporter must be an OpenTelemetry SpanExporter, got {span_exporter!r}"
            raise TypeError(msg)
        self.span_exporter = span_exporter
        self.max_queue_size = max_queue_size
        self.max_batch_size = max_batch_size
        self.max_attribute_bytes = max_attribute_bytes
        self._resource = resource
        self._scope: InstrumentationScope | None = None
        self._queue: deque[ReadableSpan] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._queued = 0  # spans accepted since creation
        self._settled = 0  # of those, sent or lost
        self._lost = 0
        self._lost_flushed = 0  # `_lost` at the last force_flush
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False

    def __repr__(self) -> str:
        """Name the wrapped exporter."""
        return f"OpenTelemetryExporter({self.span_exporter!r})"

    @property
    def lost(self) -> int:
        """Spans that could not be exported (queue full, exporter failed or raised)."""
        return self._lost

    # -- called by execlog's writer ---------------------------------------------------------

    def export(
        self, executions: Sequence[Execution], events: Mapping[str, Sequence[Event]]
    ) -> bool:
        """Queue the spans of ``executions``; False when some were dropped."""
        if self._stopping:
            return False
        resource, scope = self._identity()
        spans = [
            to_span(
                ex,
                events.get(ex.execution_id, ()),
                resource=resource,
                scope=scope,
                max_attribute_bytes=self.max_attribute_bytes,
            )
            for ex in executions
        ]
        return self._queue_spans(spans)

    def export_rows(
        self, rows: Sequence[Sequence[Any]], events: Mapping[str, Sequence[Sequence[Any]]]
    ) -> bool:
        """:meth:`export` for execlog's writer: committed rows, JSON fields not decoded."""
        if self._stopping:
            return False
        resource, scope = self._identity()
        limit = self.max_attribute_bytes
        spans = [span_of_row(r, events.get(r[0], ()), resource, scope, limit) for r in rows]
        return self._queue_spans(spans)

    def _identity(self) -> tuple[Resource, InstrumentationScope]:
        if self._resource is None:
            self._resource = _default_resource()
        if self._scope is None:
            self._scope = _scope()
        return self._resource, self._scope

    def _queue_spans(self, spans: list[ReadableSpan]) -> bool:
        """Hand spans to the sending thread; False when some were dropped (queue full)."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._cond:
            self._ensure_thread()
            room = max(self.max_queue_size - len(self._queue), 0)
            dropped = max(len(spans) - room, 0)
            self._queue.extend(spans[:room])
            self._queued += len(spans)
            self._settled += dropped
            if dropped:
                self._lose(dropped, f"its queue is full (max_queue_size={self.max_queue_size})")
            self._cond.notify_all()
        return dropped == 0

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Wait until every span queued so far was sent; False on timeout or losses since."""
        if self._pid != os.getpid():
            self._after_fork()  # the parent's lock may have been held by its thread
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._queued
            self._cond.notify_all()
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(left)
            ok = self._lost == self._lost_flushed
            self._lost_flushed = self._lost
        return ok

    def shutdown(self, timeout: float = 30.0) -> None:
        """Send what is queued (within ``timeout``), stop the thread, shut the exporter down."""
        self.force_flush(timeout)  # (in a forked child: starts afresh first)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            self.span_exporter.shutdown()
        except Exception as exc:
            report_once("execlog: %r failed to shut down (%s)", self.span_exporter, exc)

    # -- the sending thread -----------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread and queue are not ours; start afresh."""
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue = deque()
        self._queued = self._settled = 0
        self._thread = None

    def _ensure_thread(self) -> None:
        """Start the sending thread (the lock is held)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="execlog-otel", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                count = min(self.max_batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
            failure = self._send(batch)
            with self._cond:
                if failure is not None:
                    self._lose(len(batch), failure)
                self._settled += len(batch)
                self._cond.notify_all()

    def _send(self, batch: list[ReadableSpan]) -> str | None:
        """Export one batch, instrumentation suppressed; a failure's description, or None."""
        from opentelemetry import context  # noqa: PLC0415

        token = None
        key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
        if key is not None:
            token = context.attach(context.set_value(key, True))  # noqa: FBT003
        try:
            result = self.span_exporter.export(batch)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            if token is not None:
                context.detach(token)
        if result is SpanExportResult.FAILURE:
            return "the exporter reported a failure"
        return None

    def _lose(self, count: int, why: str) -> None:
        """Count lost spans and say so once (the lock is held)."""
        self._lost += count
        report_once(
            "execlog could not export spans to %r: %s; they are counted as lost "
            "(the store keeps the executions)",
            self.span_exporter,
            why,
        )
