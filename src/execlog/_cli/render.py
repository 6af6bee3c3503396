"""Rendering executions for a terminal: tables, the execution tree (a text waterfall), details.

Everything here returns text; nothing prints. Colour is decided by the caller (:class:`Style`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from execlog.store import Event, Execution

__all__ = ["Style", "details", "duration_text", "table", "time_text", "tree"]

_STATUS_COLOURS = {
    "success": "32",
    "error": "31",
    "cancelled": "33",
    "partial": "33",
    "running": "36",
    "abandoned": "35",
}
_UTC = dt.timezone.utc
#: Width of the output when it is not a terminal (only the tree's bars need one).
DEFAULT_WIDTH = 100


class Style:
    """ANSI colour, only when writing to a terminal."""

    def __init__(self, colour: bool) -> None:
        """Colour when ``colour`` is True."""
        self.colour = colour

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def status(self, text: str) -> str:
        """A (possibly padded) status word, coloured by outcome."""
        code = _STATUS_COLOURS.get(text.strip())
        return text if code is None else self._paint(code, text)

    def dim(self, text: str) -> str:
        """Secondary text."""
        return self._paint("2", text)

    def bold(self, text: str) -> str:
        """Emphasis: headings and the highlighted execution."""
        return self._paint("1", text)


def duration_text(ms: float | None) -> str:
    """A duration for people: 850µs, 12.3ms, 4.20s, 3m05s, 2h07m."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f}µs"
    if ms < 1000:
        return f"{ms:.1f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    minutes, seconds = divmod(int(ms / 1000), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def time_text(value: dt.datetime | None, precise: bool = False) -> str:
    """A UTC time: ``2026-11-21 00:18:03`` (with microseconds when ``precise``)."""
    if value is None:
        return "-"
    value = value.astimezone(_UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f UTC" if precise else "%Y-%m-%d %H:%M:%S")


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    flex: Sequence[int] = (),
    right: Collection[int] = (),
    paint: Mapping[int, Callable[[str], str]] | None = None,
    keep: Collection[int] = (),
) -> str:
    """Columns separated by two spaces, cut to fit ``width`` (None: never cut).

    Args:
        headers: Column titles.
        rows: Cells as text.
        width: The terminal width; when the table is wider, the ``flex`` columns (in that order,
            then the widest) are shortened, down to 8 characters each, with an ellipsis.
        flex: Indexes of the columns to shorten first.
        right: Indexes of right-aligned columns (numbers, durations).
        paint: Per column, a function that colours a padded cell (never changes its width).
        keep: Indexes of columns never shortened (ids a user copies); the line may then be
            wider than ``width``.
    """
    paint = paint or {}
    cols = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if width is not None:
        excess = sum(cols) + 2 * (len(cols) - 1) - width
        order = list(flex) + sorted(range(len(cols)), key=lambda i: -cols[i])
        for i in (i for i in order if i not in keep):
            if excess <= 0:
                break
            cut = min(excess, max(cols[i] - 8, 0))
            cols[i] -= cut
            excess -= cut

    def line(cells: Sequence[str], painted: bool) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, cols)):
            text = _cut(cell, w)
            text = text.rjust(w) if i in right else text.ljust(w)
            if painted and i in paint:
                text = paint[i](text)
            out.append(text)
        return "  ".join(out).rstrip()

    return "\n".join([line(headers, painted=False)] + [line(r, painted=True) for r in rows])


def _label(e: Execution) -> str:
    if e.trigger_kind in ("child", "manual"):
        return e.name
    return f"{e.name} ({e.trigger_kind})"


def _tree_lines(executions: Sequence[Execution], below: str | None) -> list[tuple[str, Execution]]:
    """(indentation prefix, execution) in display order: depth first, children by start."""
    by_id = {e.execution_id: e for e in executions}
    children: dict[str | None, list[Execution]] = {}
    for e in executions:
        parent = e.parent_execution_id
        if parent not in by_id or parent == e.execution_id:
            parent = None
        children.setdefault(parent, []).append(e)
    for kids in children.values():
        kids.sort(key=lambda e: (e.started_at, e.execution_id))
    lines: list[tuple[str, Execution]] = []
    seen: set[str] = set()

    def walk(root: Execution) -> None:
        # A stack rather than recursion: a tree may be deeper than Python's recursion limit.
        stack: list[tuple[Execution, str, str]] = [(root, "", "")]
        while stack:
            e, prefix, branch = stack.pop()
            lines.append((prefix + branch, e))
            if e.execution_id in seen:  # a cycle in hand-edited data: show it once, do not loop
                continue
            seen.add(e.execution_id)
            kids = children.get(e.execution_id, [])
            if branch:
                prefix += "   " if branch == "└─ " else "│  "
            last = len(kids) - 1
            stack.extend(
                (kids[i], prefix, "└─ " if i == last else "├─ ") for i in range(last, -1, -1)
            )

    if below is not None:
        if below in by_id:
            walk(by_id[below])
        return lines
    for root in children.get(None, []):
        walk(root)
    # Executions only reachable through a cycle: start from the earliest one left.
    for e in sorted(executions, key=lambda e: (e.started_at, e.execution_id)):
        if e.execution_id not in seen:
            walk(e)
    return lines


def tree(
    executions: Sequence[Execution],
    style: Style,
    *,
    width: int | None = None,
    below: str | None = None,
    highlight: str | None = None,
    now: dt.datetime | None = None,
    events: Mapping[str, Sequence[Event]] | None = None,
) -> str:
    """One line per execution, children indented, with a bar on the tree's timeline.

    With ``events`` (by execution id), each execution's events follow its line, indented.

    Args:
        executions: The members of the tree (e.g. a correlation chain), in any order. An
            execution whose parent is not among them is drawn as a root.
        style: Colours.
        width: Line width to fit (default :data:`DEFAULT_WIDTH`).
        below: Draw only the subtree under this execution id.
        highlight: Mark this execution (``◀``, and bold on a terminal).
        now: Where the bar of a ``running`` execution ends (default: the current time).
        events: Events to show under their executions.
    """
    width = width or DEFAULT_WIDTH
    lines = _tree_lines(executions, below)
    if not lines:
        return ""
    shown = [e for _, e in lines]
    now_s = (now or dt.datetime.now(_UTC)).timestamp()

    def end_of(e: Execution) -> float:
        start = e.started_at.timestamp()
        if e.duration_ms is not None:
            return start + e.duration_ms / 1000
        return max(now_s, start) if e.status == "running" else start

    parents: set[str | None] | None = None
    start = min(e.started_at.timestamp() for e in shown)
    span = max(max(end_of(e) for e in shown) - start, 1e-9)
    bar_width = max(min(30, width // 4), 8)
    label_width = max(len(prefix) + len(_label(e)) for prefix, e in lines)
    # The rest of a line: 2 + status 9 + 1 + duration 8 + 2 + bar + " ◀" 2.
    label_width = min(label_width, max(width - bar_width - 24, 12))
    out = []
    for prefix, e in lines:
        label = _cut(prefix + _label(e), label_width).ljust(label_width)
        offset = min(int((e.started_at.timestamp() - start) / span * bar_width), bar_width - 1)
        length = max(int((end_of(e) - e.started_at.timestamp()) / span * bar_width), 1)
        bar = (" " * offset + "█" * min(length, bar_width - offset)).ljust(bar_width)
        duration = duration_text(e.duration_ms) if e.status != "running" else "…"
        text = f"{label}  {style.status(e.status.ljust(9))} {duration:>8}  {style.dim(bar)}"
        if e.execution_id == highlight:
            text = f"{style.bold(label)}  {style.status(e.status.ljust(9))} {duration:>8}  "
            text += f"{style.dim(bar)} ◀"
        out.append(text.rstrip())
        if events and events.get(e.execution_id):
            parents = parents if parents is not None else {x.parent_execution_id for x in shown}
            inner = _continuation(prefix) + ("│  " if e.execution_id in parents else "   ")
            out.extend(
                inner + _cut(event_line(ev, style), max(width - len(inner), 12))
                for ev in events[e.execution_id]
            )
    return "\n".join(out)


def _continuation(prefix: str) -> str:
    """The indentation below a tree line: its branch becomes a rail or a gap."""
    if not prefix:
        return ""
    return prefix[:-3] + ("│  " if prefix.endswith("├─ ") else "   ")


def event_line(ev: Event, style: Style) -> str:
    """One event on one line: time, level, message, logger, attributes (compact JSON)."""
    text = f"· {ev.at.strftime('%H:%M:%S.%f')[:-3]} {style.status(ev.level.ljust(8))} "
    text += " ".join(ev.message.split())
    if ev.logger:
        text += style.dim(f" [{ev.logger}]")
    # where a log record was made and its stack trace: left to `show --json`
    attributes = {
        k: v
        for k, v in ev.attributes.items()
        if not k.startswith("code.") and k != "exception.stacktrace"
    }
    if attributes:
        shown = orjson.dumps(attributes, option=orjson.OPT_NON_STR_KEYS).decode()
        text += " " + style.dim(shown)
    return text


def _json_block(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    return "  " + text.replace("\n", "\n  ")


def details(e: Execution, style: Style, events: Sequence[Event] = ()) -> str:
    """Every field of one execution: scalars aligned, JSON pretty-printed, the traceback.

    Its events, if given, follow, one per line (oldest first).
    """
    fields: list[tuple[str, str]] = [
        ("execution_id", e.execution_id),
        ("name", e.name),
        ("kind", e.kind),
        ("status", e.status),
        ("started_at", time_text(e.started_at, precise=True)),
        ("ended_at", time_text(e.ended_at, precise=True)),
        (
            "duration_ms",
            "-"
            if e.duration_ms is None
            else f"{e.duration_ms:.3f} ({duration_text(e.duration_ms)})",
        ),
        ("parent_execution_id", e.parent_execution_id or "-"),
        ("correlation_id", e.correlation_id),
        ("trigger_kind", e.trigger_kind),
        ("run_id", e.run_id or "-"),
        ("pid", str(e.pid)),
        ("thread_id", str(e.thread_id)),
        ("host", e.host),
        ("error_type", e.error_type or "-"),
        ("error_message", e.error_message or "-"),
    ]
    key_width = max(len(k) for k, _ in fields)
    out = []
    for key, value in fields:
        shown = style.status(value) if key == "status" else value
        shown = shown.replace("\n", "\n" + " " * (key_width + 2))
        out.append(f"{style.dim(key.ljust(key_width))}  {shown}")
    for key in ("inputs", "output", "tags"):
        out.append(style.bold(f"{key}:"))
        out.append(_json_block(getattr(e, key)))
    if e.error_stack:
        out.append(style.bold("error_stack:"))
        out.append("  " + e.error_stack.rstrip().replace("\n", "\n  "))
    if events:
        out.append(style.bold("events:"))
        for ev in events:
            out.append("  " + event_line(ev, style))
            stack = ev.attributes.get("exception.stacktrace")
            if isinstance(stack, str):
                out.append("    " + stack.rstrip().replace("\n", "\n    "))
    return "\n".join(out)
