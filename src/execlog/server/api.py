"""The JSON API (read): executions, lineage, trees, correlations, statistics, runs.

Each route asks the public :class:`~execlog.Store` and answers with the ``to_dict()`` of what
it returns. Parameters are checked by FastAPI from their declarations, except the times, which
take what the command line takes (ISO 8601, a date, an age such as ``1h``).
"""

from __future__ import annotations

import argparse
import operator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from execlog._cli.times import moment
from execlog._storage import COLUMNS
from execlog.exceptions import AmbiguousIdError
from execlog.server import models
from execlog.server.models import JSONAnswer
from execlog.store import HISTOGRAM_BOUNDS_MS, Execution

if TYPE_CHECKING:
    import datetime as dt

    from execlog.store import Store

__all__ = ["MAX_OFFSET", "parse_time", "plain", "router", "store_of", "tree_of"]

router = APIRouter(prefix="/api", tags=["read"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": models.ErrorModel, "description": "Unknown id"}
}

Name = Annotated[str | None, Query(description="Exact name")]
StatusValue = Literal["running", "success", "error", "partial", "cancelled", "abandoned"]
Status = Annotated[StatusValue | None, Query(description="One status value")]
#: The forms ``since``/``until`` take, for the OpenAPI document (the server also accepts what
#: the command line does beyond it, e.g. a space instead of ``T``).
TIME_PATTERN = (
    r"^(\d{1,5}(\.\d{1,3})?[smhdw]"
    r"|(19|2\d)\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?)$"
)
Since = Annotated[
    str | None,
    Query(
        description="Started at or after: ISO 8601 (Z or an offset), a date, or an age (1h)",
        json_schema_extra={"pattern": TIME_PATTERN},
    ),
]
Until = Annotated[
    str | None,
    Query(
        description="Started before (same forms as since)",
        json_schema_extra={"pattern": TIME_PATTERN},
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many (1..1000)")]
#: Largest offset: SQLite's integers are 64-bit.
MAX_OFFSET = 2**62
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many first")]
Id = Annotated[str, Path(description="An execution id")]


_FIELDS = operator.attrgetter(*COLUMNS)


def plain(ex: Execution) -> dict[str, Any]:
    """``ex.to_dict()`` for orjson, which writes aware datetimes as ISO 8601 itself (faster)."""
    return dict(zip(COLUMNS, _FIELDS(ex)))


def store_of(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


def parse_time(value: str | None, parameter: str) -> dt.datetime | None:
    """A ``since``/``until`` value as an aware datetime; a 422 naming ``parameter`` if bad."""
    if value is None or value == "":
        return None
    try:
        return moment(value)
    except (argparse.ArgumentTypeError, ValueError, OverflowError) as exc:
        raise RequestValidationError(
            [{"loc": ("query", parameter), "msg": str(exc), "type": "value_error"}]
        ) from None


def _execution(store: Store, execution_id: str) -> Execution:
    found = store.get(execution_id)
    if found is None:
        raise HTTPException(404, f"no execution with id {execution_id!r}")
    return found


@router.get(
    "/executions", response_model=models.ExecutionList, summary="List executions, newest first"
)
def list_executions(
    request: Request,
    name: Name = None,
    status: Status = None,
    correlation_id: Annotated[str | None, Query(description="One correlation")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Executions matching every filter, newest first (``started_at``, then id)."""
    found = store_of(request).list(
        name=name,
        status=status,
        correlation_id=correlation_id,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=limit + 1,
        offset=offset,
    )
    return JSONAnswer(
        {
            "executions": [plain(e) for e in found[:limit]],
            "limit": limit,
            "offset": offset,
            "has_more": len(found) > limit,
        }
    )


@router.get(
    "/executions/{execution_id}",
    response_model=models.ExecutionModel,
    responses=_NOT_FOUND,
    summary="One execution",
)
def get_execution(request: Request, execution_id: Id) -> Any:
    """Every field of one execution, and its ``events`` (oldest first) when it has some."""
    store = store_of(request)
    found = _execution(store, execution_id)
    data = plain(found)
    events = store.events(found.execution_id)
    if events:
        data["events"] = [event.to_dict() for event in events]
    return JSONAnswer(data)


@router.get(
    "/executions/{execution_id}/lineage",
    response_model=models.LineageModel,
    responses=_NOT_FOUND,
    summary="Ancestors, descendants and siblings",
)
def get_lineage(
    request: Request,
    execution_id: Id,
    depth: Annotated[int, Query(ge=0, le=1000, description="Levels walked up and down")] = 20,
) -> Any:
    """An execution with its ancestors (root first), descendants (breadth first) and siblings."""
    try:
        lineage = store_of(request).lineage(execution_id, depth=depth)
    except KeyError:
        raise HTTPException(404, f"no execution with id {execution_id!r}") from None
    return JSONAnswer(
        {
            "execution": plain(lineage.execution),
            "ancestors": [plain(e) for e in lineage.ancestors],
            "descendants": [plain(e) for e in lineage.descendants],
            "siblings": [plain(e) for e in lineage.siblings],
        }
    )


def tree_of(top: Execution, below: list[Execution]) -> dict[str, Any]:
    """``top`` with ``children``, recursively, each level by start time then id."""
    by_parent: dict[str, list[Execution]] = {}
    for ex in below:
        if ex.parent_execution_id is not None:
            by_parent.setdefault(ex.parent_execution_id, []).append(ex)
    seen = {top.execution_id}

    def node(ex: Execution) -> dict[str, Any]:
        kids = sorted(
            by_parent.get(ex.execution_id, ()), key=lambda e: (e.started_at, e.execution_id)
        )
        kids = [k for k in kids if k.execution_id not in seen]
        seen.update(k.execution_id for k in kids)
        found = plain(ex)
        found["children"] = [node(k) for k in kids]
        return found

    return node(top)


@router.get(
    "/executions/{execution_id}/tree",
    response_model=models.TreeNode,
    responses=_NOT_FOUND,
    summary="The execution and everything below it, nested",
)
def get_tree(request: Request, execution_id: Id) -> Any:
    """The execution with ``children``, recursively (by start time, then id)."""
    try:
        lineage = store_of(request).lineage(execution_id, depth=1000)
    except KeyError:
        raise HTTPException(404, f"no execution with id {execution_id!r}") from None
    return JSONAnswer(tree_of(lineage.execution, list(lineage.descendants)))


@router.get(
    "/correlations/{correlation_id}",
    response_model=models.Correlation,
    responses={404: {"model": models.ErrorModel, "description": "Unknown correlation"}},
    summary="Every execution of one correlation",
)
def get_correlation(
    request: Request,
    correlation_id: Annotated[str, Path(description="A correlation id")],
) -> Any:
    """Every execution sharing the correlation id, by start time (then id)."""
    store = store_of(request)
    chain = store.correlation_chain(correlation_id)
    if not chain:
        raise HTTPException(404, f"no correlation with id {correlation_id!r}")
    root = store.root(correlation_id)
    return JSONAnswer(
        {
            "correlation_id": correlation_id,
            "total_executions": len(chain),
            "root_execution_id": None if root is None else root.execution_id,
            "executions": [plain(e) for e in chain],
        }
    )


@router.get("/stats", response_model=list[models.StatsModel], summary="Statistics per name")
def get_stats(request: Request, name: Name = None, since: Since = None) -> Any:
    """Per name: count, errors, error rate, p50/p95/max duration (finished executions)."""
    found = store_of(request).stats(name=name, since=parse_time(since, "since"))
    return JSONAnswer([s.to_dict() for s in found])


@router.get("/runs", response_model=models.RunList, summary="List runs (root executions)")
def list_runs(
    request: Request,
    name: Name = None,
    status: Status = None,
    since: Since = None,
    until: Until = None,
    q: Annotated[str | None, Query(description="Text in a name or error message")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Root executions, newest first, each with its tree's execution, error, running counts."""
    found = store_of(request).runs(
        name=name,
        status=status,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        search=q,
        limit=limit + 1,
        offset=offset,
    )
    return JSONAnswer(
        {
            "runs": [
                {
                    **plain(r.root),
                    "executions": r.executions,
                    "errors": r.errors,
                    "running": r.running,
                }
                for r in found[:limit]
            ],
            "limit": limit,
            "offset": offset,
            "has_more": len(found) > limit,
        }
    )


@router.get("/histogram", response_model=models.Histogram, summary="Duration histograms")
def get_histogram(request: Request, name: Name = None, since: Since = None) -> Any:
    """Finished executions per name, counted in duration buckets."""
    found = store_of(request).histogram(name=name, since=parse_time(since, "since"))
    return JSONAnswer(
        {
            "bounds_ms": list(HISTOGRAM_BOUNDS_MS),
            "names": [{"name": n, "counts": list(c)} for n, c in found.items()],
        }
    )


@router.get("/ids", response_model=models.IdMatches, summary="Ids an id prefix names")
def get_ids(
    request: Request,
    prefix: Annotated[
        str, Query(min_length=1, max_length=64, description="An id or its first characters")
    ],
    kind: Annotated[
        Literal["execution", "correlation"], Query(description="Execution or correlation ids")
    ] = "execution",
) -> Any:
    """The ids that ``prefix`` names (how a client resolves an abbreviated id).

    The id itself, or those starting with a prefix of at least 8 characters: at most 10,
    ``more`` when there are others (``execlog show 01a23d10 --db http://...``).
    """
    store = store_of(request)
    resolve = store.resolve_id if kind == "execution" else store.resolve_correlation_id
    try:
        return JSONAnswer({"ids": [resolve(prefix)], "more": False})
    except KeyError:
        return JSONAnswer({"ids": [], "more": False})
    except AmbiguousIdError as exc:
        return JSONAnswer({"ids": list(exc.candidates), "more": exc.more})
