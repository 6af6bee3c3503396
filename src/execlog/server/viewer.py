"""The web viewer: runs, a trace's waterfall, one execution (with a retry's diff), statistics.

A page is a view function and a Jinja2 template (autoescaped); views ask the public
:class:`~execlog.Store` and hand plain data to the template. The small script in ``static/``
only fetches server-rendered fragments (the side panel, the live waterfall).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from execlog.server.api import MAX_OFFSET, parse_time, store_of
from execlog.server.records import STATUSES
from execlog.store import HISTOGRAM_BOUNDS_MS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from execlog.store import Execution

__all__ = ["mount_static", "not_found", "router", "wants_page"]

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)
PAGE = 50
#: How far back text search looks when no ``since`` is given.
SEARCH_LOOKBACK = "7d"
#: Deepest visual indent of the waterfall (deeper levels are drawn at this one).
MAX_INDENT = 12
RETRY_KINDS = frozenset({"retry", "repair"})
#: Outcomes that a later attempt (an execution naming this one as its parent) may repeat.
_FAILED = frozenset({"error", "cancelled", "abandoned", "partial"})


def is_retry(ex: Execution, parent: Execution | None) -> bool:
    """Whether ``ex`` repeats its parent (the attempt its diff compares it with).

    So it is when triggered as a retry or repair, or (an explicit ``parent=`` with the default
    trigger) when named like a parent that did not succeed.
    """
    if not ex.parent_execution_id:
        return False
    if ex.trigger_kind in RETRY_KINDS:
        return True
    return parent is not None and parent.name == ex.name and parent.status in _FAILED


_UTC = dt.timezone.utc


def _version() -> str:
    from execlog import __version__  # noqa: PLC0415 - resolved lazily by the package

    return str(__version__)


def duration(ms: float | None) -> str:  # noqa: PLR0911 - one return per unit
    """A duration for people: ``840 µs``, ``12.3 ms``, ``4.56 s``, ``3m 07s``."""
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 100:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def moment(value: dt.datetime | None) -> str:
    """A UTC time to the millisecond: ``2026-11-21 08:00:00.123Z``."""
    if value is None:
        return "—"
    return value.astimezone(_UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def pretty(value: Any) -> str:
    """JSON, indented, keys sorted (for ``<pre>`` and diffs)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


def quote(value: str) -> str:
    """``value`` as one URL path segment (ids are usually safe as they are: checked first)."""
    if _URL_SAFE.fullmatch(value):
        return value
    return urllib.parse.quote(value, safe="")


def is_truncated(value: Any) -> bool:
    """Whether a captured value is execlog's truncation marker."""
    return isinstance(value, dict) and value.get("truncated") is True and "preview" in value


_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["duration"] = duration
_env.filters["moment"] = moment
_env.filters["pretty"] = pretty
_env.filters["segment"] = quote
_env.tests["truncated"] = is_truncated
_env.globals["version"] = _version()
_env.globals["statuses"] = sorted(STATUSES)


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template into an HTML response."""
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status_code)


def mount_static(app: FastAPI) -> None:
    """Serve the package's ``static/`` directory under ``/static``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def wants_page(request: Request) -> bool:
    """Whether a request is for a page (not the API nor a static file)."""
    return not request.url.path.startswith(("/api/", "/static/"))


def not_found(request: Request, detail: str) -> HTMLResponse:
    """The page shown for an unknown id or address."""
    del request
    return render("error.html", 404, title="Not found", detail=detail)


def _page_links(request: Request, offset: int, has_more: bool) -> dict[str, str | None]:
    """URLs of the previous and next pages, keeping every other parameter."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset" and v]

    def url(to: int) -> str:
        query = [*params, ("offset", str(to))] if to else params
        return request.url.path + ("?" + urllib.parse.urlencode(query) if query else "")

    return {
        "previous": url(max(offset - PAGE, 0)) if offset > 0 else None,
        "next": url(offset + PAGE) if has_more else None,
    }


def _bad_filter(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors())
    return str(exc)


# -- runs and executions --------------------------------------------------------------------

Text = Annotated[str | None, Query()]


@router.get("/", response_class=HTMLResponse)
def runs_page(
    request: Request,
    name: Text = None,
    status: Text = None,
    since: Text = None,
    until: Text = None,
    q: Text = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Recent runs (root executions), newest first, with filters held in the URL."""
    filters = {"name": name, "status": status, "since": since, "until": until, "q": q}
    # A text found nowhere is answered at once, but one common in the history and absent from
    # the recent runs is looked for run by run: bounded by a default time range.
    lookback = SEARCH_LOOKBACK if q and not since else None
    try:
        found = store_of(request).runs(
            name=name or None,
            status=status or None,
            since=parse_time(since or lookback, "since"),
            until=parse_time(until, "until"),
            search=q or None,
            limit=PAGE + 1,
            offset=offset,
        )
        problem = None
    except Exception as exc:
        found, problem = [], _bad_filter(exc)
    return render(
        "runs.html",
        title="Runs",
        runs=found[:PAGE],
        filters=filters,
        problem=problem,
        lookback=lookback,
        offset=offset,
        pages=_page_links(request, offset, len(found) > PAGE),
    )


@router.get("/executions", response_class=HTMLResponse)
def executions_page(
    request: Request,
    name: Text = None,
    status: Text = None,
    since: Text = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Every execution (not only roots) matching the filters, newest first."""
    try:
        found = store_of(request).list(
            name=name or None,
            status=status or None,
            since=parse_time(since, "since"),
            limit=PAGE + 1,
            offset=offset,
        )
        problem = None
    except Exception as exc:
        found, problem = [], _bad_filter(exc)
    return render(
        "executions.html",
        title=f"Executions{f' named {name}' if name else ''}",
        executions=found[:PAGE],
        filters={"name": name, "status": status, "since": since},
        problem=problem,
        pages=_page_links(request, offset, len(found) > PAGE),
    )


# -- the trace ----------------------------------------------------------------------------


def waterfall(chain: list[Execution], now: dt.datetime) -> dict[str, Any]:
    """Rows of a trace's waterfall: nested order, depth, bar position (0..1000) and marks."""
    if not chain:
        return {"rows": [], "running": False, "span_ms": 0.0, "ticks": []}
    by_id = {e.execution_id: e for e in chain}
    ids = by_id.keys()
    children: dict[str | None, list[Execution]] = {}
    for ex in chain:  # chain is by start time, so each list is too
        parent = ex.parent_execution_id if ex.parent_execution_id in ids else None
        children.setdefault(parent, []).append(ex)
    start = min(e.started_at for e in chain)

    def end_of(ex: Execution) -> dt.datetime:
        if ex.status == "running" or ex.ended_at is None:
            return max(now, ex.started_at)
        return ex.ended_at

    end = max(end_of(e) for e in chain)
    span_ms = max((end - start) / dt.timedelta(milliseconds=1), 0.001)
    order: list[tuple[Execution, int]] = []
    seen: set[str] = set()
    stack = [(ex, 0) for ex in reversed(children.get(None, []))]
    while stack:
        ex, depth = stack.pop()
        if ex.execution_id in seen:
            continue
        seen.add(ex.execution_id)
        order.append((ex, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(ex.execution_id, [])))
    order += [(ex, 0) for ex in chain if ex.execution_id not in seen]  # parent cycles
    rows = []
    for ex, depth in order:
        x = (ex.started_at - start) / dt.timedelta(milliseconds=1) / span_ms * 1000
        width = (end_of(ex) - ex.started_at) / dt.timedelta(milliseconds=1) / span_ms * 1000
        running = ex.status == "running"
        rows.append(
            {
                "id": ex.execution_id,
                "href": "/execution/" + quote(ex.execution_id),
                "name": ex.name,
                "status": ex.status,
                "deep": depth - MAX_INDENT if depth > MAX_INDENT else 0,
                "indent": min(depth, MAX_INDENT),
                "x": f"{x:.2f}",
                "width": f"{max(width, 1.5):.2f}",
                "open": running,
                "duration": "running" if running else duration(ex.duration_ms),
                "retry": is_retry(ex, by_id.get(ex.parent_execution_id or "")),
            }
        )
    return {
        "rows": rows,
        "running": any(e.status == "running" for e in chain),
        "span_ms": span_ms,
        "ticks": [duration(span_ms * i / 4) for i in range(5)],
        "start": start,
    }


def _trace_context(request: Request, correlation_id: str) -> dict[str, Any]:
    store = store_of(request)
    chain = store.correlation_chain(correlation_id)
    if not chain:
        raise HTTPException(404, f"no correlation with id {correlation_id!r}")
    root = store.root(correlation_id)
    return {
        "correlation_id": correlation_id,
        "root": root or chain[0],
        "chain": chain,
        "errors": sum(e.status == "error" for e in chain),
        "waterfall": waterfall(chain, dt.datetime.now(_UTC)),
    }


@router.get("/trace/{correlation_id}", response_class=HTMLResponse)
def trace_page(request: Request, correlation_id: str) -> HTMLResponse:
    """A correlation as a waterfall, with the selected execution beside it."""
    context = _trace_context(request, correlation_id)
    selected = request.query_params.get("selected")
    chosen = next((e for e in context["chain"] if e.execution_id == selected), context["root"])
    return render(
        "trace.html",
        title=f"Trace · {context['root'].name}",
        selected=chosen,
        script_data={"correlation_id": correlation_id, "live": context["waterfall"]["running"]},
        **context,
        **_execution_context(request, chosen, brief=True),
    )


@router.get("/trace/{correlation_id}/waterfall", response_class=HTMLResponse)
def waterfall_fragment(request: Request, correlation_id: str) -> HTMLResponse:
    """The waterfall alone (the live trace fetches it every 2 s while something runs)."""
    return render("waterfall.html", **_trace_context(request, correlation_id))


# -- one execution ------------------------------------------------------------------------


def _execution_context(request: Request, ex: Execution, *, brief: bool) -> dict[str, Any]:
    store = store_of(request)
    parent = store.get(ex.parent_execution_id) if ex.parent_execution_id else None
    context: dict[str, Any] = {
        "ex": ex,
        "retry": is_retry(ex, parent),
        "events": store.events(ex.execution_id),
    }
    if brief:
        return context
    lineage = store.lineage(ex.execution_id, depth=20)
    children = store.children(ex.execution_id)
    context.update(
        lineage=lineage,
        parent=parent,
        root=store.root(ex.correlation_id),
        children=children,
        retries=[c for c in children if is_retry(c, ex)],
    )
    return context


def _get(request: Request, execution_id: str) -> Execution:
    found = store_of(request).get(execution_id)
    if found is None:
        raise HTTPException(404, f"no execution with id {execution_id!r}")
    return found


@router.get("/execution/{execution_id}", response_class=HTMLResponse)
def execution_page(request: Request, execution_id: str) -> HTMLResponse:
    """Every field of one execution, its payloads, its error, and links around it."""
    ex = _get(request, execution_id)
    return render("execution.html", title=ex.name, **_execution_context(request, ex, brief=False))


@router.get("/execution/{execution_id}/panel", response_class=HTMLResponse)
def execution_panel(request: Request, execution_id: str) -> HTMLResponse:
    """The execution shown beside the waterfall (a fragment)."""
    ex = _get(request, execution_id)
    return render("panel.html", **_execution_context(request, ex, brief=True))


def side_by_side(before: str, after: str) -> list[tuple[str, str, str]]:
    """Lines of two texts paired for a side-by-side diff: (kind, left, right)."""
    left, right = before.splitlines(), after.splitlines()
    rows: list[tuple[str, str, str]] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [("same", a, b) for a, b in zip(left[i1:i2], right[j1:j2])]
            continue
        a_part, b_part = left[i1:i2], right[j1:j2]
        for k in range(max(len(a_part), len(b_part))):
            rows.append(
                (
                    "changed" if tag == "replace" else "removed" if tag == "delete" else "added",
                    a_part[k] if k < len(a_part) else "",
                    b_part[k] if k < len(b_part) else "",
                )
            )
    return rows


@router.get("/execution/{execution_id}/diff", response_class=HTMLResponse)
def diff_page(request: Request, execution_id: str) -> HTMLResponse:
    """A retry beside the attempt it repeats: inputs, output and error, side by side."""
    ex = _get(request, execution_id)
    if not ex.parent_execution_id:
        raise HTTPException(404, f"execution {execution_id!r} repeats no other execution")
    before = _get(request, ex.parent_execution_id)

    def error_text(e: Execution) -> str:
        if e.error_type is None and e.error_message is None:
            return ""
        return f"{e.error_type}: {e.error_message}\n\n{e.error_stack or ''}".rstrip()

    sections = [
        (
            "Status",
            f"{before.status}  ({duration(before.duration_ms)})",
            f"{ex.status}  ({duration(ex.duration_ms)})",
        ),
        ("Inputs", pretty(before.inputs), pretty(ex.inputs)),
        ("Output", pretty(before.output), pretty(ex.output)),
        ("Error", error_text(before), error_text(ex)),
    ]
    return render(
        "diff.html",
        title=f"Diff · {ex.name}",
        ex=ex,
        before=before,
        sections=[
            {"title": title, "rows": side_by_side(a, b), "same": a == b} for title, a, b in sections
        ],
    )


# -- statistics -----------------------------------------------------------------------------


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, since: Text = None) -> HTMLResponse:
    """Per name: count, error rate, p50/p95/max and a duration histogram."""
    store = store_of(request)
    try:
        when = parse_time(since, "since")
        stats = store.stats(since=when)
        histograms = store.histogram(since=when)
        problem = None
    except Exception as exc:
        stats, histograms, problem = [], {}, _bad_filter(exc)
    labels = ["<1ms", "<10ms", "<100ms", "<1s", "<10s", "<1m", "<10m", "≥10m"]
    assert len(labels) == len(HISTOGRAM_BOUNDS_MS) + 1
    lines = []
    for s in stats:
        counts = histograms.get(s.name, (0,) * len(labels))
        top = max(counts) or 1
        lines.append(
            {
                "stats": s,
                "bars": [
                    {"label": label, "count": c, "height": round(c / top * 30, 2)}
                    for label, c in zip(labels, counts)
                ],
            }
        )
    return render("stats.html", title="Statistics", lines=lines, since=since, problem=problem)
