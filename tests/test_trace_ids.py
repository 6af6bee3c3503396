"""The one mapping from execlog ids to W3C trace context ids."""

from __future__ import annotations

import uuid

from execlog._ids import new_id
from execlog._trace_ids import span_id, span_id_int, trace_id, trace_id_int


def test_trace_id_is_the_uuid_of_the_correlation() -> None:
    correlation = new_id(1_700_000_000_000_000_000)
    assert trace_id(correlation) == uuid.UUID(correlation).hex
    assert trace_id_int(correlation) == uuid.UUID(correlation).int


def test_trace_id_of_a_foreign_correlation_is_stable_hex() -> None:
    first = trace_id("order-42")
    assert first == trace_id("order-42") != trace_id("order-43")
    assert len(first) == 32
    assert int(first, 16) > 0


def test_span_id_is_stable_and_distinct() -> None:
    ids = [new_id(1_700_000_000_000_000_000 + i) for i in range(1000)]
    spans = {span_id(i) for i in ids}
    assert len(spans) == len(ids)
    assert all(len(s) == 16 and int(s, 16) > 0 for s in spans)
    assert span_id(ids[0]) == span_id(ids[0])
    assert span_id_int(ids[0]) == int(span_id(ids[0]), 16)


def test_zero_ids_are_never_produced() -> None:
    assert trace_id("00000000-0000-0000-0000-000000000000") == "0" * 31 + "1"
