"""Rendering executions for a terminal: tables and the execution tree (a text waterfall)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from execlog.store import Execution

__all__ = ["Style", "duration_text", "table", "tree"]

_STATUS_COLOURS = {
    "success": "32",
    "error": "31",
    "cancelled": "33",
    "partial": "33",
    "running": "36",
    "abandoned": "35",
}


class Style:
    """ANSI colour, only when writing to a terminal."""

    def __init__(self, colour: bool) -> None:
        """Colour when ``colour`` is True."""
        self.colour = colour

    def status(self, status: str) -> str:
        """The status word, coloured by outcome."""
        code = _STATUS_COLOURS.get(status)
        if not self.colour or code is None:
            return status
        return f"\x1b[{code}m{status}\x1b[0m"

    def dim(self, text: str) -> str:
        """Secondary text."""
        return f"\x1b[2m{text}\x1b[0m" if self.colour else text


def duration_text(ms: float | None) -> str:
    """A duration for people: 850µs, 12.3ms, 4.20s, 3m05s."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f}µs"
    if ms < 1000:
        return f"{ms:.1f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes)}m{int(seconds):02d}s"


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None) -> str:
    """Left-aligned columns; the widest column is cut so the table fits ``width``."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    cols = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    total = sum(cols) + 2 * (len(cols) - 1)
    if total > width and cols:
        widest = cols.index(max(cols))
        cols[widest] = max(cols[widest] - (total - width), 8)
    lines = ["  ".join(_cut(h, w).ljust(w) for h, w in zip(headers, cols)).rstrip()]
    lines.extend("  ".join(_cut(c, w).ljust(w) for c, w in zip(row, cols)).rstrip() for row in rows)
    return "\n".join(lines)


def tree(
    executions: Sequence[Execution],
    style: Style,
    width: int | None = None,
    root_id: str | None = None,
) -> str:
    """One line per execution, children indented, with a bar placed on the root's timeline."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    by_id = {e.execution_id: e for e in executions}
    children: dict[str | None, list[Execution]] = {}
    for e in executions:
        parent = e.parent_execution_id if e.parent_execution_id in by_id else None
        children.setdefault(parent, []).append(e)
    for kids in children.values():
        kids.sort(key=lambda e: (e.started_at, e.execution_id))
    roots = [by_id[root_id]] if root_id in by_id else children.get(None, [])
    if not roots:
        return ""
    start = min(e.started_at for e in executions).timestamp()
    end = max((e.started_at.timestamp() + (e.duration_ms or 0) / 1000) for e in executions)
    span = max(end - start, 1e-9)
    bar_width = max(min(30, width // 4), 10)
    lines: list[tuple[str, Execution]] = []

    def walk(e: Execution, prefix: str, last: bool, top: bool, seen: set[str]) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append((prefix + branch, e))
        if e.execution_id in seen:  # hand-edited cycles
            return
        seen.add(e.execution_id)
        kids = children.get(e.execution_id, [])
        extension = "" if top else ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, prefix + extension, i == len(kids) - 1, top=False, seen=seen)

    for r in roots:
        walk(r, "", last=True, top=True, seen=set())

    def name_of(e: Execution) -> str:
        if e.trigger_kind in ("child", "manual"):
            return e.name
        return f"{e.name} ({e.trigger_kind})"

    label_width = max(len(p) + len(name_of(e)) for p, e in lines)
    label_width = min(label_width, max(width - bar_width - 28, 20))
    out = []
    for prefix, e in lines:
        label = _cut(prefix + name_of(e), label_width).ljust(label_width)
        offset = int((e.started_at.timestamp() - start) / span * bar_width)
        length = max(int((e.duration_ms or 0) / 1000 / span * bar_width), 1)
        offset = min(offset, bar_width - 1)
        length = min(length, bar_width - offset)
        bar = " " * offset + "█" * length
        status = e.status.ljust(9)
        out.append(
            f"{label}  {style.status(status)} {duration_text(e.duration_ms):>8}  "
            f"{style.dim(bar.ljust(bar_width))}".rstrip()
        )
    return "\n".join(out)
