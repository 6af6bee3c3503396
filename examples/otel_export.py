"""OpenTelemetry both ways: executions exported as spans, a root joining an existing trace.

    pip install 'execlog[otel]'
    python examples/otel_export.py [DB]          # default ./execlog.db

The program already traces with OpenTelemetry (a ``TracerProvider`` with the service name
``orders``). ``configure(export=[...])`` sends every execution through an OpenTelemetry span
exporter as well as into the database; here the console exporter prints them (use
``OTLPSpanExporter`` to send them to a collector: Jaeger, Tempo, Honeycomb, Logfire...).
The execution started inside the ``handle-order`` span records that span's ids in its tags,
and ``inject(style="w3c")`` gives the ``traceparent`` to send to the next service.
"""

from __future__ import annotations

import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

import execlog
from execlog.otel import OpenTelemetryExporter


@execlog.traced_execution
def charge(order_id: str, amount: float) -> str:
    execlog.event("card authorised", amount=amount)
    return f"receipt-{order_id}"


def main(db: str = "execlog.db") -> dict[str, str]:
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    tracer = provider.get_tracer("orders")
    exporter = OpenTelemetryExporter(ConsoleSpanExporter(), resource=provider.resource)
    execlog.configure(db=db, export=[exporter])

    with tracer.start_as_current_span("handle-order"), execlog.execution("checkout") as run:
        charge("A-17", 12.5)
        headers = execlog.inject({}, style="w3c")
    execlog.flush()  # committed to the database and printed by the console exporter
    exporter.shutdown()
    provider.shutdown()

    with execlog.open_store(db) as store:
        tags = store.get(run.execution_id).tags
    print("joined OpenTelemetry trace:", tags["otel.trace_id"], "span:", tags["otel.span_id"])
    print("traceparent for the next service:", headers["traceparent"])
    return {"traceparent": headers["traceparent"], **tags}


if __name__ == "__main__":
    main(*sys.argv[1:2])
