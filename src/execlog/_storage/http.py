"""The HTTP backend: records go to a collector (``execlog serve``), reads go through its JSON API.

The writer thread sends each batch as ``POST /api/executions`` (gzip, keep-alive, bearer
token) and counts it written only once the collector has answered 200, that is once the
collector has committed it; a batch sent twice is stored once (the collector upserts by id).
Failures that may pass (connection refused or reset, time-outs, 5xx, 429) are retried a few
times with exponential backoff and jitter, then raised as :class:`StoreError`: the writer keeps
the records in its bounded queue and tries again later, as with an unwritable database.

The standard library's ``http.client`` is the client: the core install depends on nothing but
wrapt and orjson, and one writer thread sending to one host needs exactly what it gives (one
persistent HTTP/1.1 connection, TLS through ``ssl``), no pool and no async.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import math
import os
import random
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson

from execlog._guard import report_once
from execlog._storage import COLUMNS, LineageRows, Row
from execlog.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from execlog._storage import IdColumn, ListQuery, RunRow, RunsQuery, StatsRow

__all__ = [
    "HTTPBackend",
    "event_row_of_record",
    "record_of_event_row",
    "record_of_row",
    "row_of_record",
]

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_TIMES = {COLUMNS.index("started_at"), COLUMNS.index("ended_at")}
_JSON = {COLUMNS.index("inputs"), COLUMNS.index("output"), COLUMNS.index("tags")}

#: Seconds to connect, and to wait for an answer.
TIMEOUT_S = 10.0
#: Attempts of one request before the failure goes back to the writer (which backs off more).
ATTEMPTS = 3
#: First retry delay; doubled each time, with full jitter.
BACKOFF_S = 0.05
#: Encoded records per request at most (the collector refuses bodies over 10 MB).
CHUNK_BYTES = 4 * 1024 * 1024
#: Most executions one list request asks for (the API's limit).
PAGE = 1000
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


#: The longest prefix ``GET /api/ids`` takes.
_MAX_PREFIX = 64


def _iso(us: Any) -> str | None:
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return None
    return (_EPOCH + dt.timedelta(microseconds=int(us))).isoformat()


def _us(text: str | None) -> int | None:
    if text is None:
        return None
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return (value - _EPOCH) // _MICROSECOND


def record_of_row(row: Row) -> dict[str, Any]:
    """A storage row as a record for ``POST /api/executions`` (JSON columns passed as they are)."""
    record: dict[str, Any] = {}
    for index, (name, value) in enumerate(zip(COLUMNS, row)):
        if isinstance(value, float) and math.isnan(value):
            value = None  # noqa: PLW2901 - NULL as the C path writes it
        if index in _TIMES:
            value = _iso(value)  # noqa: PLW2901
        elif index in _JSON and isinstance(value, (bytes, str)):
            value = orjson.Fragment(value)  # noqa: PLW2901 - already JSON text
        if value is not None:
            record[name] = value
    return record


def row_of_record(record: dict[str, Any]) -> Row:
    """An execution of the JSON API as a storage row."""
    values = []
    for index, name in enumerate(COLUMNS):
        value = record.get(name)
        if index in _TIMES:
            value = _us(value)
        elif index in _JSON:
            value = None if value is None else orjson.dumps(value)
        values.append(value)
    return tuple(values)


def record_of_event_row(row: Row) -> dict[str, Any]:
    """An event row as a record of ``"events"`` in ``POST /api/executions``."""
    execution_id, at, level, message, attributes, logger = row
    record: dict[str, Any] = {
        "execution_id": execution_id,
        "at": _iso(at),
        "level": level,
        "message": message,
    }
    if isinstance(attributes, (bytes, str)):
        record["attributes"] = orjson.Fragment(attributes)  # already JSON text
    if logger is not None:
        record["logger"] = logger
    return record


def event_row_of_record(record: dict[str, Any]) -> Row:
    """An event of the JSON API (``Event.to_dict()``) as a storage row."""
    attributes = record.get("attributes")
    return (
        record.get("execution_id"),
        _us(record.get("at")),
        record.get("level"),
        record.get("message"),
        orjson.dumps(attributes) if attributes else None,
        record.get("logger"),
    )


def _encode(record: dict[str, Any]) -> bytes | None:
    """One record as JSON; strings orjson refuses (lone surrogates) escaped; None if impossible."""
    try:
        return orjson.dumps(record)
    except TypeError:
        pass
    cleaned = {
        k: v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
        for k, v in record.items()
    }
    try:
        return orjson.dumps(cleaned)
    except TypeError:
        return None


class HTTPBackend:
    """A collector reached over HTTP(S), behind the same interface as a database."""

    def __init__(self, url: str, token: str | None = None) -> None:
        """Prepare a connection to the collector at ``url`` (connected on first use)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            msg = f"not a collector URL: {url!r} (use http://host:port)"
            raise StoreError(msg)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if self.https else 80)
        except ValueError as exc:
            msg = f"not a collector URL: {url!r} ({exc})"
            raise StoreError(msg) from None
        self.prefix = parts.path.rstrip("/")
        self.token = token or os.environ.get("EXECLOG_TOKEN") or None
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.where = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # -- the connection -----------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT_S)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self._drop_connection()
            raise
        if response.will_close:
            self._drop_connection()
        return response.status, data

    def _request(
        self, method: str, path: str, body: bytes | None = None, *, gzipped: bool = False
    ) -> tuple[int, bytes]:
        """Send one request, retrying what may pass; raise StoreError when it does not."""
        headers = {"Accept": "application/json", "User-Agent": "execlog"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            if gzipped:
                headers["Content-Encoding"] = "gzip"
        problem = ""
        with self._lock:
            for attempt in range(ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, BACKOFF_S * 2**attempt))  # noqa: S311 - jitter
                try:
                    status, data = self._once(method, path, body, headers)
                except (TimeoutError, OSError, http.client.HTTPException) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    continue
                if status in _RETRY_STATUS:
                    problem = f"HTTP {status}"
                    continue
                if status == 401:
                    msg = f"the collector {self.where} refused the token (401); set EXECLOG_TOKEN"
                    raise StoreError(msg)
                return status, data
        msg = f"the collector {self.where} cannot be reached ({problem})"
        raise StoreError(msg)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a JSON answer; None for a 404."""
        if params:
            query = {k: v for k, v in params.items() if v is not None}
            if query:
                path += "?" + urllib.parse.urlencode(query)
        status, data = self._request("GET", path)
        if status == 404:
            return None
        if status != 200:
            msg = f"the collector {self.where} answered {status} to GET {path}: {data[:200]!r}"
            raise StoreError(msg)
        return orjson.loads(data)

    @staticmethod
    def _quote(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        rows: Sequence[Row],
        running: Sequence[Row],
        dropped: int,
        events: Sequence[Row] = (),
    ) -> int:
        """Send a batch; return how many records the collector did not store (rejected).

        Executions first, then their events (``"events"`` of the same API): each chunk is one
        request, and a chunk is stored whole or not at all.
        """
        del dropped  # counted and reported by this process's writer; not sent
        skipped = self._send([*running, *rows])[1]
        if events:
            skipped += self._send(events, kind="events")[1]
        return skipped

    def events(self, execution_id: str) -> list[Row]:
        """The execution's events, as the API gives them with the execution (oldest first)."""
        found = self._get(f"/api/executions/{self._quote(execution_id)}")
        if found is None:
            return []
        return [event_row_of_record(e) for e in found.get("events") or ()]

    def upsert(
        self, rows: Sequence[Row], running: Sequence[Row], events: Sequence[Row] = ()
    ) -> int:
        """Send executions to be upserted, and events; return how many executions were stored."""
        stored = self._send([*running, *rows])[0]
        if events:
            self._send(events, kind="events")
        return stored

    def _send(self, rows: Sequence[Row], kind: str = "executions") -> tuple[int, int]:
        stored = skipped = 0
        chunk: list[bytes] = []
        size = 0
        as_record = record_of_row if kind == "executions" else record_of_event_row
        for row in rows:
            encoded = _encode(as_record(row))
            if encoded is None:
                skipped += 1
                continue
            if chunk and size + len(encoded) > CHUNK_BYTES:
                stored, skipped = self._post(chunk, stored, skipped, kind)
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded) + 1
        if chunk:
            stored, skipped = self._post(chunk, stored, skipped, kind)
        return stored, skipped

    def _post(
        self, chunk: list[bytes], stored: int, skipped: int, kind: str = "executions"
    ) -> tuple[int, int]:
        items = b",".join(chunk)
        batch = (
            b'{"executions":[' + items + b"]}"
            if kind == "executions"
            else b'{"executions":[],"events":[' + items + b"]}"
        )
        body = gzip.compress(batch, compresslevel=5)
        status, data = self._request("POST", "/api/executions", body, gzipped=True)
        if status != 200:
            # A 4xx other than 401 will not pass by retrying: these records are lost.
            report_once(
                "the collector %s refused %d record(s) (HTTP %d: %s); they are counted as dropped",
                self.where,
                len(chunk),
                status,
                data[:200].decode("utf-8", "replace"),
            )
            return stored, skipped + len(chunk)
        answer = orjson.loads(data)
        events = kind == "events"
        rejected = answer.get("events_rejected" if events else "rejected") or []
        if rejected:
            first = rejected[0]
            report_once(
                "the collector %s rejected %d record(s) (first: index %s, field %s: %s)",
                self.where,
                len(rejected),
                first.get("index"),
                first.get("field"),
                first.get("error"),
            )
        count = int(answer.get("events_stored" if events else "stored", 0))
        return stored + count, skipped + len(rejected)

    def replaced(self) -> bool:
        """A collector is never replaced under the writer."""
        return False

    def abandon_dead(self) -> int:
        """The collector marks abandoned rows on its own host; nothing to do from here."""
        return 0

    # -- reading ------------------------------------------------------------------------

    def get(self, execution_id: str) -> Row | None:
        """One execution, or None."""
        found = self._get(f"/api/executions/{self._quote(execution_id)}")
        return None if found is None else row_of_record(found)

    def list_rows(self, query: ListQuery) -> list[Row]:
        """Executions matching ``query``, newest first (paged through the API's limit)."""
        found: list[Row] = []
        offset = query.offset
        while len(found) < query.limit:
            answer = self._get(
                "/api/executions",
                {
                    "name": query.name,
                    "status": query.status,
                    "correlation_id": query.correlation_id,
                    "since": _iso(query.since_us),
                    "until": _iso(query.until_us),
                    "limit": min(PAGE, query.limit - len(found)),
                    "offset": offset,
                },
            )
            page = answer["executions"]
            found += [row_of_record(r) for r in page]
            offset += len(page)
            if not answer.get("has_more") or not page:
                break
        return found

    def children(self, execution_id: str) -> list[Row]:
        """Direct children, by start time (the first level of the lineage's descendants)."""
        answer = self._get(f"/api/executions/{self._quote(execution_id)}/lineage", {"depth": 1})
        return [] if answer is None else [row_of_record(r) for r in answer["descendants"]]

    def correlation(self, correlation_id: str) -> list[Row]:
        """Every execution of one correlation, by start time."""
        answer = self._get(f"/api/correlations/{self._quote(correlation_id)}")
        return [] if answer is None else [row_of_record(r) for r in answer["executions"]]

    def root(self, correlation_id: str) -> Row | None:
        """The root execution of a correlation."""
        answer = self._get(f"/api/correlations/{self._quote(correlation_id)}")
        if answer is None or answer.get("root_execution_id") is None:
            return None
        root_id = answer["root_execution_id"]
        for record in answer["executions"]:
            if record["execution_id"] == root_id:
                return row_of_record(record)
        return self.get(root_id)

    def lineage(self, execution_id: str, depth: int) -> LineageRows | None:
        """Ancestors, descendants and siblings through the API (``depth`` at most 1000)."""
        answer = self._get(
            f"/api/executions/{self._quote(execution_id)}/lineage", {"depth": min(depth, 1000)}
        )
        if answer is None:
            return None
        return LineageRows(
            row_of_record(answer["execution"]),
            [row_of_record(r) for r in answer["ancestors"]],
            [row_of_record(r) for r in answer["descendants"]],
            [row_of_record(r) for r in answer["siblings"]],
        )

    def stats(self, name: str | None, since_us: int | None) -> list[StatsRow]:
        """Per-name statistics computed by the collector."""
        answer = self._get("/api/stats", {"name": name, "since": _iso(since_us)})
        return [
            (s["name"], s["count"], s["errors"], s["p50_ms"], s["p95_ms"], s["max_ms"])
            for s in answer
        ]

    def runs(self, query: RunsQuery) -> list[RunRow]:
        """Root executions with their tree counts (``GET /api/runs``)."""
        answer = self._get(
            "/api/runs",
            {
                "name": query.name,
                "status": query.status,
                "since": _iso(query.since_us),
                "until": _iso(query.until_us),
                "q": query.search,
                "limit": min(PAGE, query.limit),
                "offset": query.offset,
            },
        )
        return [
            (row_of_record(r), r["executions"], r["errors"], r["running"]) for r in answer["runs"]
        ]

    def histogram(self, name: str | None, since_us: int | None) -> list[tuple[str, int, int]]:
        """Duration buckets per name (``GET /api/histogram``)."""
        answer = self._get("/api/histogram", {"name": name, "since": _iso(since_us)})
        return [
            (item["name"], bucket, count)
            for item in answer["names"]
            for bucket, count in enumerate(item["counts"])
            if count
        ]

    def ids_from(self, column: IdColumn, start: str, limit: int) -> list[str]:
        """The ids ``start`` names, as ``GET /api/ids`` resolves them on the server.

        A server without that endpoint looks ids up whole: ``[start]`` if it exists.
        """
        if limit < 1 or not start:
            return []
        kind = "execution" if column == "execution_id" else "correlation"
        if len(start) <= _MAX_PREFIX:
            found = self._get("/api/ids", {"prefix": start, "kind": kind})
            if isinstance(found, dict) and isinstance(found.get("ids"), list):
                return [i for i in found["ids"] if isinstance(i, str)][:limit]
        if column == "execution_id":
            whole = self._get(f"/api/executions/{self._quote(start)}")
        else:
            whole = self._get(f"/api/correlations/{self._quote(start)}")
        return [] if whole is None else [start]

    def id_neighbours(self, execution_id: str) -> tuple[str | None, str | None]:
        """Not known over HTTP: the id itself on both sides, so that ids are shown whole."""
        return execution_id, execution_id

    # -- removing -----------------------------------------------------------------------

    def delete(self, execution_id: str) -> int:  # noqa: ARG002 - the Backend signature
        """Not offered by the collector's API."""
        msg = f"executions cannot be deleted through the collector {self.where}; run it there"
        raise StoreError(msg)

    def prune(self, before_us: int, *, dry_run: bool = False) -> int:  # noqa: ARG002
        """Not offered by the collector's API."""
        msg = f"executions cannot be pruned through the collector {self.where}; run it there"
        raise StoreError(msg)

    def dropped_total(self) -> int:
        """Not reported by the collector's API: 0."""
        return 0

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self._lock:
            self._drop_connection()
