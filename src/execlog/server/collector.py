"""The collector (ingest): ``POST /api/executions`` stores a batch of records.

The body is read as it arrives and refused with 413 as soon as it passes the limit, before or
after gzip decompression; it is never decompressed beyond the limit. Good records are stored
in one transaction (upsert by ``execution_id``, a ``running`` record never replacing a finished
one) and each bad one is reported by index and field, so one bad record never costs the others.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from execlog.server import models
from execlog.server.models import JSONAnswer
from execlog.server.records import Invalid, event_of, execution_of

if TYPE_CHECKING:
    from execlog.store import Store

__all__ = ["read_body", "router"]

router = APIRouter(prefix="/api", tags=["ingest"])


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped if it says so; 413 past ``limit`` bytes, 400 if not gzip."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"identity", "gzip"}:
        raise HTTPException(415, f"unsupported Content-Encoding {encoding!r} (use gzip)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    parts: list[bytes] = []
    size = received = 0
    try:
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise _too_large(limit)
            if inflate is not None:
                piece = inflate.decompress(piece, limit + 1 - size)  # noqa: PLW2901
                if inflate.unconsumed_tail:
                    raise _too_large(limit)
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            parts.append(piece)
        if inflate is not None:
            parts.append(inflate.flush())
            if not inflate.eof:
                raise HTTPException(400, "the gzip body is incomplete")
    except zlib.error as exc:
        raise HTTPException(400, f"the body is not valid gzip: {exc}") from None
    return b"".join(parts)


def _body_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


@router.post(
    "/executions",
    response_model=models.IngestResult,
    summary="Store a batch of executions",
    responses={
        401: {"model": models.ErrorModel, "description": "Missing or wrong token"},
        413: {"model": models.ErrorModel, "description": "Body over 10 MB"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": models.IngestBody.model_json_schema()},
            },
        }
    },
)
async def ingest(request: Request) -> Any:
    """Upsert executions by id; answers how many were stored and which were rejected, and why.

    Each record needs ``execution_id``, ``name``, ``status`` and ``started_at`` (ISO 8601);
    the other fields of an execution are optional. A ``running`` record never replaces a
    finished execution. ``"events"`` (optional) adds events of executions, each with
    ``execution_id``, ``at``, ``level`` and ``message`` (``attributes`` and ``logger``
    optional), in the same transaction; the answer then has ``events_stored`` and
    ``events_rejected``. ``Content-Encoding: gzip`` is accepted.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # Also what keeps a web page from posting here: a cross-site form cannot send JSON.
        raise HTTPException(415, "send the body as Content-Type: application/json")
    body = await read_body(request, request.app.state.max_body_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _body_error(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("executions"), list):
        raise _body_error('expected an object {"executions": [...]}')
    if not isinstance(data.get("events", []), list):
        raise _body_error('"events" must be a list')
    accepted = []
    rejected = []
    for index, record in enumerate(data["executions"]):
        try:
            accepted.append(execution_of(record))
        except Invalid as exc:
            rejected.append({"index": index, "field": exc.field, "error": exc.error})
    events = []
    events_rejected = []
    for index, record in enumerate(data.get("events", [])):
        try:
            events.append(event_of(record))
        except Invalid as exc:
            events_rejected.append({"index": index, "field": exc.field, "error": exc.error})
    store: Store = request.app.state.ingest_store
    stored = await run_in_threadpool(store.upsert, accepted, events) if accepted or events else 0
    answer = {"stored": stored, "rejected": rejected}
    if events or events_rejected:
        answer |= {"events_stored": len(events), "events_rejected": events_rejected}
    return JSONAnswer(answer)
