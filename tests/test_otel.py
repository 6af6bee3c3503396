"""OpenTelemetry both ways: executions exported as spans, roots joining the current span, W3C.

Real SDK components only: the SDK's ``InMemorySpanExporter``, its ``TracerProvider``, and the
OTLP/HTTP exporter sending to a receiver in this file that decodes the protobuf request as a
collector would.
"""

from __future__ import annotations

import gzip
import http.server
import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import execlog
import execlog.logging
from execlog import _trace_ids
from execlog.otel import OpenTelemetryExporter, to_span

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from opentelemetry.sdk.trace import ReadableSpan

RESOURCE = Resource.create({"service.name": "nightly-etl"})


@pytest.fixture
def memory(db: str) -> Iterator[InMemorySpanExporter]:
    """Executions exported to the SDK's in-memory exporter, beside the database."""
    spans = InMemorySpanExporter()
    exporter = OpenTelemetryExporter(spans, resource=RESOURCE)
    execlog.configure(export=[exporter])
    yield spans
    exporter.shutdown(timeout=5)


@pytest.fixture
def tracer() -> Any:
    """An SDK tracer of its own (the global provider is left alone)."""
    return TracerProvider(resource=RESOURCE).get_tracer("tests")


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name.rsplit(".", 1)[-1]: s for s in spans}


def ns(value: Any) -> int:
    return int(value.timestamp() * 1_000_000) * 1000


class TestExport:
    def test_ids_parents_times_status(self, db, memory, implementation):
        """Trace from correlation, span from execution, parent from parent, times, statuses."""

        @execlog.traced_execution
        def load(path, limit=10):
            execlog.event("rows loaded", rows=3)
            return [1, 2, 3]

        @execlog.traced_execution
        def publish():
            raise ValueError("no route to host")

        with execlog.execution("nightly", kind="workflow", inputs={"day": "d"}) as root:
            load("a.csv")
            with pytest.raises(ValueError, match="no route"):
                publish()
        assert execlog.flush()
        spans = by_name(memory.get_finished_spans())
        assert {"nightly", "load", "publish"} == set(spans)
        with execlog.open_store(db) as store:
            for ex in store.correlation_chain(root.correlation_id):
                span = spans[ex.name.rsplit(".", 1)[-1]]
                assert _trace_ids.trace_id_int(root.correlation_id) == span.context.trace_id
                assert _trace_ids.span_id_int(ex.execution_id) == span.context.span_id
                assert span.context.trace_flags.sampled
                assert ns(ex.started_at) == span.start_time
                assert ns(ex.ended_at) == span.end_time
                assert ex.execution_id == span.attributes["execlog.execution_id"]
                assert ex.status == span.attributes["execlog.status"]
                assert "nightly-etl" == span.resource.attributes["service.name"]
                assert "execlog" == span.instrumentation_scope.name
        assert spans["nightly"].parent is None
        for child in ("load", "publish"):
            assert spans["nightly"].context.span_id == spans[child].parent.span_id
            assert spans["nightly"].context.trace_id == spans[child].parent.trace_id
        assert StatusCode.UNSET == spans["load"].status.status_code
        assert StatusCode.ERROR == spans["publish"].status.status_code
        assert "no route to host" == spans["publish"].status.description
        assert SpanKind.INTERNAL == spans["load"].kind

    def test_attributes(self, db, memory, implementation):
        """Inputs/output as JSON, semantic-convention names, other fields under ``execlog.``."""

        @execlog.traced_execution(tags={"team": "data"})
        def load(path, limit=10):
            return {"rows": 3}

        with execlog.execution("run", run_id="r-1"):
            load("a.csv")
        assert execlog.flush()
        span = by_name(memory.get_finished_spans())["load"]
        attributes = dict(span.attributes)
        assert {"path": "a.csv", "limit": 10} == orjson.loads(attributes["execlog.inputs"])
        assert {"rows": 3} == orjson.loads(attributes["execlog.output"])
        assert {"team": "data"} == orjson.loads(attributes["execlog.tags"])
        assert attributes["code.function.name"].endswith(".load")
        assert "function" == attributes["execlog.kind"]
        assert "child" == attributes["execlog.trigger_kind"]
        assert "r-1" == attributes["execlog.run_id"]
        assert isinstance(attributes["process.pid"], int)
        assert isinstance(attributes["thread.id"], int)
        assert attributes["host.name"]
        assert attributes["execlog.duration_ms"] >= 0

    def test_exception_event(self, db, memory, implementation):
        """An error becomes an ``exception`` event with type, message and stack trace."""

        @execlog.traced_execution
        def parse(text):
            return int(text)

        with pytest.raises(ValueError):
            parse("x")
        assert execlog.flush()
        (span,) = memory.get_finished_spans()
        (event,) = [e for e in span.events if e.name == "exception"]
        assert "ValueError" == event.attributes["exception.type"]
        assert "invalid literal" in event.attributes["exception.message"]
        assert "int(text)" in event.attributes["exception.stacktrace"]
        assert "ValueError" == span.attributes["error.type"]
        assert span.end_time == event.timestamp

    def test_events_become_span_events(self, db, memory, implementation):
        """``execlog.event`` and log records are span events, in order, with their data."""
        handler = execlog.logging.ExecutionLogHandler()
        log = logging.getLogger("tests.otel")
        log.addHandler(handler)
        try:

            @execlog.traced_execution
            def step():
                execlog.event("rows loaded", rows=120, source={"bucket": "b"}, password="x")
                log.warning("slow source %s", "s3")

            step()
        finally:
            log.removeHandler(handler)
        assert execlog.flush()
        (span,) = memory.get_finished_spans()
        loaded, slow = span.events
        assert "rows loaded" == loaded.name
        assert 120 == loaded.attributes["rows"]
        assert {"bucket": "b"} == orjson.loads(loaded.attributes["source"])
        assert "[REDACTED]" == loaded.attributes["password"]
        assert "info" == loaded.attributes["execlog.level"]
        assert "slow source s3" == slow.name
        assert "warning" == slow.attributes["execlog.level"]
        assert "tests.otel" == slow.attributes["execlog.logger"]
        assert span.start_time <= loaded.timestamp <= slow.timestamp <= span.end_time

    def test_events_of_long_execution_wait_for_its_end(self, db, memory):
        """Events committed batches before their execution ends still go on its span."""
        with execlog.execution("long"):
            execlog.event("early")
            assert execlog.flush()  # the event is committed now; the span comes later
            assert not memory.get_finished_spans()
            execlog.event("late")
        assert execlog.flush()
        (span,) = memory.get_finished_spans()
        assert ["early", "late"] == [e.name for e in span.events]

    def test_other_statuses_kept_in_attribute(self, db, memory):
        """partial and cancelled leave the status unset and are named in ``execlog.status``."""
        with execlog.execution("p") as ex:
            ex.set_status("partial")
        with pytest.raises(KeyboardInterrupt), execlog.execution("c"):
            raise KeyboardInterrupt
        assert execlog.flush()
        spans = by_name(memory.get_finished_spans())
        assert "partial" == spans["p"].attributes["execlog.status"]
        assert "cancelled" == spans["c"].attributes["execlog.status"]
        assert StatusCode.UNSET == spans["p"].status.status_code
        assert StatusCode.UNSET == spans["c"].status.status_code

    def test_exported_twice_is_the_same_span(self, db, memory):
        """An execution mapped again from the store gives the same ids and times."""
        with execlog.execution("once") as ex, execlog.execution("child"):
            pass
        assert execlog.flush()
        exported = by_name(memory.get_finished_spans())
        with execlog.open_store(db) as store:
            for execution in store.correlation_chain(ex.correlation_id):
                again = to_span(execution, store.events(execution.execution_id))
                first = exported[execution.name]
                assert first.context == again.context
                assert first.parent == again.parent
                assert (first.start_time, first.end_time) == (again.start_time, again.end_time)

    def test_writer_mapping_equals_to_span(self, db, memory, tracer, implementation):
        """The writer maps committed rows exactly as ``to_span`` maps stored executions."""

        @execlog.traced_execution(tags={"team": "data"})
        def step(rows, password="x"):
            execlog.event("loaded", rows=rows, nested={"a": [1, 2]})
            raise ValueError("bad row")

        with tracer.start_as_current_span("request"), execlog.execution("root", run_id="r"):
            execlog.event("start")
            with pytest.raises(ValueError):
                step(3)
        assert execlog.flush()
        exported = by_name(memory.get_finished_spans())
        with execlog.open_store(db) as store:
            for execution in store.list():
                again = to_span(execution, store.events(execution.execution_id), resource=RESOURCE)
                first = exported[execution.name.rsplit(".", 1)[-1]]
                assert dict(first.attributes) == dict(again.attributes)
                assert [(e.name, dict(e.attributes), e.timestamp) for e in first.events] == [
                    (e.name, dict(e.attributes), e.timestamp) for e in again.events
                ]
                assert (first.status.status_code, first.status.description) == (
                    again.status.status_code,
                    again.status.description,
                )
                assert [link.context for link in first.links] == [
                    link.context for link in again.links
                ]
                assert (first.kind, first.start_time, first.end_time) == (
                    again.kind,
                    again.start_time,
                    again.end_time,
                )

    def test_bounded_attributes(self, db, memory):
        """Big inputs and outputs are bounded JSON attributes (execlog's truncation marker)."""
        for exporter in execlog._recorder.RECORDER.config.export:
            exporter.max_attribute_bytes = 256
        with execlog.execution("big", inputs={"blob": "x" * 5000}) as ex:
            ex.set_output(list(range(2000)))
        assert execlog.flush()
        (span,) = memory.get_finished_spans()
        for key in ("execlog.inputs", "execlog.output"):
            value = span.attributes[key]
            assert len(value.encode()) <= 256
            assert orjson.loads(value)["truncated"] is True

    def test_http_trigger_is_server_span(self, db, memory):
        """An execution triggered by HTTP is a SERVER span."""
        with execlog.execution("GET /items", trigger_kind="http"):
            pass
        assert execlog.flush()
        assert SpanKind.SERVER == memory.get_finished_spans()[0].kind

    def test_resource_from_global_provider(self, db, monkeypatch):
        """Without a resource, the global TracerProvider's is used (service.name from OTel)."""
        from opentelemetry import trace

        monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider(resource=RESOURCE))
        spans = InMemorySpanExporter()
        execlog.configure(export=[OpenTelemetryExporter(spans)])
        with execlog.execution("x"):
            pass
        assert execlog.flush()
        assert "nightly-etl" == spans.get_finished_spans()[0].resource.attributes["service.name"]


class _Failing(SpanExporter):
    def __init__(self, result: SpanExportResult | None = None, delay: float = 0.0) -> None:
        self.result = result
        self.delay = delay
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        time.sleep(self.delay)
        if self.result is None:
            raise ConnectionError("collector unreachable")
        return self.result

    def shutdown(self) -> None:
        pass


class TestFailures:
    @pytest.mark.parametrize("result", [None, SpanExportResult.FAILURE])
    def test_failing_exporter_never_affects_store_or_program(self, db, result, caplog):
        """Store and program go on; flush is False; losses counted and reported once."""
        exporter = OpenTelemetryExporter(_Failing(result))
        execlog.configure(export=[exporter])
        with caplog.at_level(logging.WARNING, logger="execlog"):
            for i in range(3):
                with execlog.execution(f"run-{i}"):
                    pass
                assert not execlog.flush(timeout=5)
        assert 3 == exporter.lost
        with execlog.open_store(db) as store:
            assert 3 == len(store.recent())
        reports = [r for r in caplog.records if "could not export spans" in r.getMessage()]
        assert 1 == len(reports)

    def test_raising_execlog_exporter(self, db, caplog):
        """An exporter object whose export() raises: counted, reported, store unaffected."""

        class Broken:
            def export(self, executions, events):
                raise RuntimeError("broken exporter")

        execlog.configure(export=[Broken()])
        with caplog.at_level(logging.WARNING, logger="execlog"), execlog.execution("x"):
            pass
        assert not execlog.flush()
        assert execlog._recorder.RECORDER.exports.lost == 1
        assert any("broken exporter" in r.getMessage() for r in caplog.records)
        with execlog.open_store(db) as store:
            assert ["x"] == [e.name for e in store.recent()]

    def test_slow_exporter_never_holds_up_store_and_flush_honours_timeout(self, db):
        """Spans queue while the collector is slow; the store is written meanwhile."""
        slow = _Failing(SpanExportResult.SUCCESS, delay=0.5)
        exporter = OpenTelemetryExporter(slow)
        execlog.configure(export=[exporter])
        with execlog.execution("first"):
            pass
        started = time.monotonic()
        assert not execlog.flush(timeout=0.05)
        assert time.monotonic() - started < 0.4
        with execlog.open_store(db) as store:
            assert ["first"] == [e.name for e in store.recent()]
        assert exporter.force_flush(timeout=10)
        exporter.shutdown(timeout=5)

    def test_queue_full_counts_losses(self, db):
        """Beyond ``max_queue_size`` spans are dropped and counted."""
        exporter = OpenTelemetryExporter(
            _Failing(SpanExportResult.SUCCESS, delay=0.3), max_queue_size=2
        )
        execlog.configure(export=[exporter], batch_size=64)
        for _ in range(20):
            with execlog.execution("x"):
                pass
        execlog.flush(timeout=10)
        assert exporter.lost > 0
        exporter.shutdown(timeout=5)

    def test_bare_span_exporter_is_wrapped(self, db):
        """A SpanExporter given to ``export=`` as it is works like a wrapped one."""
        spans = InMemorySpanExporter()
        execlog.configure(export=[spans])
        (wrapped,) = execlog._recorder.RECORDER.config.export
        assert isinstance(wrapped, OpenTelemetryExporter)
        with execlog.execution("x"):
            pass
        assert execlog.flush()
        assert ["x"] == [s.name for s in spans.get_finished_spans()]
        wrapped.shutdown(timeout=5)

    @pytest.mark.parametrize("value", ["otlp", 3, [object()]])
    def test_bad_export_option(self, value):
        """``export=`` that is not exporters raises ConfigError naming the option."""
        with pytest.raises(execlog.ConfigError, match="export"):
            execlog.configure(export=value)

    def test_bad_sizes(self):
        """Sizes must be positive ints; the message names the argument."""
        with pytest.raises(ValueError, match="max_queue_size"):
            OpenTelemetryExporter(InMemorySpanExporter(), max_queue_size=0)


class TestJoin:
    def test_root_under_current_span_records_ids(self, db, tracer, implementation):
        """A root started inside an OTel span records its trace and span ids; children don't."""

        @execlog.traced_execution
        def child():
            return execlog.current_execution().execution_id

        @execlog.traced_execution
        def root():
            return child()

        with tracer.start_as_current_span("request") as span:
            child_id = root()
            with execlog.execution("block") as block:
                pass
        outside = root()
        context = span.get_span_context()
        assert execlog.flush()
        with execlog.open_store(db) as store:
            root_row = store.get(store.get(child_id).parent_execution_id)
            expected = {
                "otel.trace_id": f"{context.trace_id:032x}",
                "otel.span_id": f"{context.span_id:016x}",
            }
            assert expected == root_row.tags
            assert expected == store.get(block.execution_id).tags
            assert {} == store.get(child_id).tags
            assert {} == store.get(store.get(outside).parent_execution_id).tags

    def test_context_without_a_span_joins_nothing(self, db, implementation):
        """A current OpenTelemetry Context holding only baggage is no span to join."""
        from opentelemetry import baggage, context

        @execlog.traced_execution
        def root():
            return execlog.current_execution().execution_id

        token = context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            eid = root()
        finally:
            context.detach(token)
        assert execlog.flush()
        with execlog.open_store(db) as store:
            assert {} == store.get(eid).tags

    def test_native_path_asks_python_only_inside_a_span(self, db, tracer, monkeypatch):
        """With OpenTelemetry imported, a root asks the Python probe only when a span may be."""
        from execlog import _fastpath, _otel_link

        if not _fastpath.READY:
            pytest.skip("execlog._speedups is not built here")
        calls = []

        def probe() -> bool:
            calls.append(1)
            return _otel_link.span_current()

        _fastpath.SPEEDUPS.set_root_probe(probe, _otel_link.runtime_var)
        try:

            @execlog.traced_execution
            def root():
                return None

            root()
            assert [] == calls  # an empty Context: answered in C
            with tracer.start_as_current_span("request"):
                root()
            assert [1] == calls
        finally:
            _fastpath.SPEEDUPS.set_root_probe(_otel_link.span_current, _otel_link.runtime_var)

    def test_joined_root_links_to_the_span_but_keeps_its_trace(self, db, memory, tracer):
        """The exported span stays in execlog's trace and links to the joined one."""
        with tracer.start_as_current_span("request") as span, execlog.execution("job") as ex:
            pass
        assert execlog.flush()
        (exported,) = memory.get_finished_spans()
        assert _trace_ids.trace_id_int(ex.correlation_id) == exported.context.trace_id
        (link,) = exported.links
        assert span.get_span_context().trace_id == link.context.trace_id
        assert span.get_span_context().span_id == link.context.span_id

    def test_explicit_tags_kept(self, db, tracer):
        """Tags given to the execution stay beside the joined ids."""
        with tracer.start_as_current_span("request"), execlog.execution("x", tags={"a": 1}) as ex:
            pass
        assert execlog.flush()
        with execlog.open_store(db) as store:
            tags = store.get(ex.execution_id).tags
        assert 1 == tags["a"]
        assert "otel.span_id" in tags


class TestW3C:
    def test_inject_writes_traceparent_of_the_exported_span(self, db, memory):
        """``traceparent`` names the span the execution is exported as."""
        with execlog.execution("call") as ex:
            headers = execlog.inject({}, style="w3c")
        assert ex.execution_id == headers["Execlog-Parent-Id"]
        assert ex.correlation_id == headers["Execlog-Correlation-Id"]
        assert execlog.flush()
        (span,) = memory.get_finished_spans()
        expected = f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
        assert expected == headers["traceparent"]

    def test_inject_outside_execution_leaves_carrier(self):
        """Outside any execution nothing is written."""
        assert {} == execlog.inject({}, style="w3c")

    def test_extract_prefers_execlog_headers(self, db):
        """With both, the execlog headers decide the lineage."""
        with execlog.execution("call") as ex:
            headers = execlog.inject({}, style="w3c")
        context = execlog.extract(headers)
        assert ex.execution_id == context.parent_execution_id
        assert context.otel_span_id is None

    def test_traceparent_alone_starts_a_joined_root(self, db):
        """A foreign ``traceparent`` starts a root that records the caller's ids."""
        header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        context = execlog.extract({"Traceparent": header})
        with execlog.execution("handler", context=context) as ex:
            pass
        assert execlog.flush()
        with execlog.open_store(db) as store:
            row = store.get(ex.execution_id)
        assert row.parent_execution_id is None
        assert ex.execution_id == row.correlation_id
        assert "manual" == row.trigger_kind
        assert {
            "otel.trace_id": "0af7651916cd43dd8448eb211c80319c",
            "otel.span_id": "b7ad6b7169203331",
        } == row.tags

    @pytest.mark.parametrize(
        "header",
        [
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ],
    )
    def test_invalid_traceparent_ignored(self, header):
        """An invalid header carries nothing."""
        assert execlog.extract({"traceparent": header}) is None

    def test_bad_style(self):
        """An unknown style is a ValueError naming the styles."""
        with pytest.raises(ValueError, match="w3c"):
            execlog.inject({}, style="b3")  # type: ignore[arg-type]


class _Collector(http.server.BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP trace receiver: decodes each request as a collector would."""

    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, self.headers["Content-Type"], request))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class TestOTLP:
    def test_spans_reach_an_otlp_http_receiver(self, db, collector, implementation):
        """The OTLP/HTTP exporter's protobuf carries execlog's ids, parents, events, resource."""
        endpoint = f"http://127.0.0.1:{collector.server_port}/v1/traces"
        exporter = OpenTelemetryExporter(OTLPSpanExporter(endpoint=endpoint), resource=RESOURCE)
        execlog.configure(export=[exporter])

        @execlog.traced_execution
        def load(path):
            execlog.event("rows loaded", rows=3)
            return 3

        with execlog.execution("nightly") as root:
            load("a.csv")
        assert execlog.flush(timeout=10)
        exporter.shutdown(timeout=5)
        spans = []
        for path, content_type, request in collector.requests:
            assert "/v1/traces" == path
            assert "application/x-protobuf" == content_type
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                assert "nightly-etl" == attrs["service.name"]
                for scope_spans in resource_spans.scope_spans:
                    assert "execlog" == scope_spans.scope.name
                    spans.extend(scope_spans.spans)
        by = {s.name.rsplit(".", 1)[-1]: s for s in spans}
        assert {"nightly", "load"} == set(by)
        trace_id = bytes.fromhex(_trace_ids.trace_id(root.correlation_id))
        assert {trace_id} == {s.trace_id for s in spans}
        assert bytes.fromhex(_trace_ids.span_id(root.execution_id)) == by["nightly"].span_id
        assert by["nightly"].span_id == by["load"].parent_span_id
        assert b"" == by["nightly"].parent_span_id
        assert ["rows loaded"] == [e.name for e in by["load"].events]
        assert by["load"].start_time_unix_nano <= by["load"].end_time_unix_nano
        attrs = {a.key: a.value for a in by["load"].attributes}
        assert '{"path":"a.csv"}' == attrs["execlog.inputs"].string_value
        assert attrs["code.function.name"].string_value.endswith(".load")


class TestImport:
    def test_import_execlog_does_not_import_opentelemetry(self):
        """``import execlog`` (with events and logging) stays at wrapt and orjson."""
        code = (
            "import sys, execlog, execlog.logging\n"
            "execlog.configure(db=':memory:')\n"
            "with execlog.execution('x'):\n"
            "    execlog.event('e')\n"
            "execlog.flush()\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'google'))))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert "[]" == out.strip()


class TestMiddleware:
    def test_traceparent_from_another_service_joins_the_request_root(self, db):
        """The web middleware hands a lone ``traceparent`` to extract: the root records it."""
        from wsgiref.util import setup_testing_defaults

        from execlog.wsgi import ExecutionMiddleware

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/items",
            "HTTP_TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }
        setup_testing_defaults(environ)
        body = ExecutionMiddleware(app)(environ, lambda status, headers, exc_info=None: None)
        assert [b"ok"] == list(body)
        body.close()
        assert execlog.flush()
        with execlog.open_store(db) as store:
            (request,) = store.recent()
        assert request.parent_execution_id is None
        assert "0af7651916cd43dd8448eb211c80319c" == request.tags["otel.trace_id"]
        assert "b7ad6b7169203331" == request.tags["otel.span_id"]


class TestFork:
    @pytest.mark.timeout(60)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_forked_child_exports_its_own_spans(self, db, collector):
        """A forked child starts its own sending thread; the parent's spans are not resent."""
        import os

        from conftest import wait_or_kill

        endpoint = f"http://127.0.0.1:{collector.server_port}/v1/traces"
        exporter = OpenTelemetryExporter(OTLPSpanExporter(endpoint=endpoint))
        execlog.configure(export=[exporter])
        with execlog.execution("before-fork"):
            pass
        assert execlog.flush(timeout=10)  # the parent's sending thread is running
        pid = os.fork()
        if pid == 0:
            try:
                with execlog.execution("in-child"):
                    pass
                ok = execlog.flush(timeout=10)
            except BaseException:
                os._exit(3)
            os._exit(0 if ok else 2)
        assert 0 == wait_or_kill(pid, 30)
        names = [
            span.name
            for _, _, request in collector.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        assert ["before-fork", "in-child"] == sorted(names)
        exporter.shutdown(timeout=5)

    @pytest.mark.timeout(60)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_child_flushing_first_does_not_wait_for_the_parents_thread(self, db):
        """A child's first flush starts afresh, even if the parent's lock was held at fork."""
        import os

        from conftest import wait_or_kill

        spans = InMemorySpanExporter()
        exporter = OpenTelemetryExporter(spans)
        execlog.configure(export=[exporter])
        with exporter._cond:  # held across the fork, as the sending thread might hold it
            pid = os.fork()
            if pid == 0:
                os._exit(0 if exporter.force_flush(timeout=5) else 2)
        assert 0 == wait_or_kill(pid, 30)
