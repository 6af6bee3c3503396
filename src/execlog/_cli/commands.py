"""The query commands: list, show, tree, lineage, chain, stats, prune, export.

Each takes the parsed arguments and a :class:`Terminal`, prints, and returns the exit status.
Data problems raise :class:`CLIError` (printed as one line by :func:`execlog.cli.main`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import sys
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from execlog._cli import CLIError
from execlog._cli import render as r

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from execlog.store import Event, Execution, Store

__all__ = ["COMMANDS", "Terminal", "open_db"]

_UTC = dt.timezone.utc
#: Rows per query when exporting or searching: bounded memory whatever the history's size.
PAGE = 1000
#: Longest listing whose ids are shortened on a terminal (about a quarter of a second).
SHORT_IDS_UP_TO = 10_000
#: An export shows progress (on a terminal) once it has written this many executions.
PROGRESS_AFTER = 10_000
#: What the beginning of an execution id looks like (for the hint about short prefixes).
_HEXISH = re.compile(r"[0-9a-fA-F-]+")
_STAT_FIELDS = ("name", "count", "errors", "error_rate", "p50_ms", "p95_ms", "max_ms")


@dataclasses.dataclass
class Terminal:
    """Where output goes, and how it may look there."""

    stdout: TextIO
    stderr: TextIO
    style: r.Style
    width: int | None  # None: not a terminal, never cut lines
    stdin: TextIO

    @classmethod
    def detect(cls) -> Terminal:
        """Colour and width only when stdout is a terminal; ``NO_COLOR`` turns colour off."""
        tty = _isatty(sys.stdout)
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            style=r.Style(colour=tty and not os.environ.get("NO_COLOR")),
            width=shutil.get_terminal_size().columns if tty else None,
            stdin=sys.stdin,
        )

    def print(self, text: str = "") -> None:
        """A line on stdout."""
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        """A line on stderr (messages that are not the command's output)."""
        self.stderr.write(text + "\n")

    def json(self, data: Any) -> None:
        """Indented JSON on stdout."""
        self.print(orjson.dumps(data, option=_JSON_OPTIONS).decode())


_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- opening the database ------------------------------------------------------------------


def _local_path(db: str) -> str | None:
    """The file a ``--db`` value names, or None when it is not a local file."""
    if db == ":memory:" or db.startswith("file:"):
        return None
    if db.startswith("sqlite:///"):
        return db[len("sqlite://") :] if db.startswith("sqlite:////") else db[len("sqlite:///") :]
    if "://" in db:
        return None
    return os.path.expanduser(db)


@contextlib.contextmanager
def open_db(db: str) -> Iterator[Store]:
    """Open an existing execlog database for reading; every failure becomes a CLIError."""
    import sqlite3  # noqa: PLC0415

    from execlog import StoreError, open_store  # noqa: PLC0415

    path = _local_path(db)
    if path is not None and not os.path.exists(path):
        msg = f"no execlog database at {db} (give --db PATH or set EXECLOG_DB)"
        raise CLIError(msg)
    if path is not None and os.path.isdir(path):
        msg = f"{db} is a directory, not an execlog database"
        raise CLIError(msg)
    try:
        store = open_store(db)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    except (sqlite3.DatabaseError, OSError) as exc:
        msg = f"{db} is not a usable execlog database: {exc}"
        raise CLIError(msg) from None
    try:
        yield store
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        msg = f"{db} is not a usable execlog database: {exc}"
        raise CLIError(msg) from None
    finally:
        with contextlib.suppress(Exception):
            store.close()


def _resolve(store: Store, text: str, *, correlation: bool = False) -> str:
    """The full id that ``text`` (an id or a unique prefix of one) names, or a CLIError."""
    from execlog import AmbiguousIdError  # noqa: PLC0415

    what = "correlation id" if correlation else "id"
    try:
        if correlation:
            return store.resolve_correlation_id(text)
        return store.resolve_id(text)
    except AmbiguousIdError as exc:
        lines = [f"{what} prefix {text} is ambiguous; it matches:"]
        for candidate in exc.candidates:
            found = None if correlation else store.get(candidate)
            detail = "" if found is None else f"  {found.name}  {r.time_text(found.started_at)}"
            lines.append(f"  {candidate}{detail}")
        if exc.more:
            lines.append("  ... and more: give more characters")
        raise CLIError("\n".join(lines)) from None
    except KeyError:
        plural = "executions with correlation id" if correlation else "execution with id"
        msg = f"no {plural} {text}"
        if len(text) < store.MIN_PREFIX and _HEXISH.fullmatch(text):
            msg += f" (a prefix needs at least {store.MIN_PREFIX} characters)"
        raise CLIError(msg) from None


def _get(store: Store, text: str) -> Execution:
    found = store.get(_resolve(store, text))
    if found is None:  # removed since it was resolved
        msg = f"no execution with id {text}"
        raise CLIError(msg)
    return found


def _id_column(store: Store, term: Terminal, ids: list[str]) -> dict[str, str]:
    """How ids are shown in a table: whole when piped, short on a terminal.

    Piped (a script reads it): whole ids. On a terminal: cut to one length at which each is
    unique in the database (like git's short ids), which ``show``, ``tree`` and ``lineage``
    accept. Finding them costs two index look-ups per id (about 25 µs), so a listing longer
    than :data:`SHORT_IDS_UP_TO` rows keeps whole ids.
    """
    if term.width is None or len(ids) > SHORT_IDS_UP_TO:
        return {i: i for i in ids}
    short = store.short_ids(ids)
    width = max((len(s) for s in short.values()), default=0)
    return {i: i[: max(width, len(short[i]))] for i in ids}


def _rows(found: list[Execution], short: dict[str, str]) -> list[list[str]]:
    return [
        [
            short.get(e.execution_id, e.execution_id),
            e.name,
            e.status,
            r.time_text(e.started_at),
            r.duration_text(e.duration_ms),
        ]
        for e in found
    ]


_HEADERS = ["ID", "NAME", "STATUS", "STARTED (UTC)", "DURATION"]


def _executions_table(term: Terminal, found: list[Execution], short: dict[str, str]) -> str:
    return r.table(
        _HEADERS,
        _rows(found, short),
        width=term.width,
        flex=[1],
        right=[4],
        paint={2: term.style.status},
        keep=[0],
    )


# -- commands --------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog list``."""
    with open_db(args.db) as store:
        found = store.list(
            name=args.name,
            status=args.status,
            since=args.since,
            until=args.until,
            limit=args.limit + 1,  # one more: is there a next page?
            offset=args.offset,
        )
        more = len(found) > args.limit
        del found[args.limit :]
        short = {} if args.json else _id_column(store, term, [e.execution_id for e in found])
    if args.json:
        term.json([e.to_dict() for e in found])
    elif found:
        term.print(_executions_table(term, found, short))
        if more and term.width is not None:
            term.print(
                term.style.dim(
                    f"more executions match: --offset {args.offset + args.limit} for the next "
                    f"{args.limit}"
                )
            )
    else:
        term.note("no matching executions")
    return 0


def cmd_show(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog show ID``."""
    with open_db(args.db) as store:
        e = _get(store, args.id)
        events = store.events(e.execution_id)
    if args.json:
        data = e.to_dict()
        if events:
            data["events"] = [ev.to_dict() for ev in events]
        term.json(data)
    else:
        term.print(r.details(e, term.style, events))
    return 0


def _newest_root(store: Store, name: str | None = None) -> Execution:
    """The tree ``tree --last`` draws: the newest root execution that has children.

    A root that ran alone (a stray one-execution call recorded after the run the user just
    made) is passed over; when no root has children, the newest root. With ``name``: the
    newest root of that name, children or not. Pages back through the history, newest first.
    """
    offset = 0
    newest: Execution | None = None
    lone_root: Execution | None = None
    while True:
        page = store.list(name=name, limit=PAGE, offset=offset)
        if not page:
            break
        newest = newest or page[0]
        for e in page:
            if e.parent_execution_id is not None:
                continue
            if name is not None or store.children(e.execution_id):
                return e
            lone_root = lone_root or e
        offset += len(page)
    if lone_root is not None:
        return lone_root
    if newest is None:
        msg = (
            f"no execution named {name!r}"
            if name is not None
            else "the database holds no executions yet"
        )
        raise CLIError(msg)
    # Every execution has a parent (e.g. recorded under an EXECLOG_PARENT_ID from elsewhere):
    # take the top of the newest execution's correlation.
    return store.root(newest.correlation_id) or newest


def _nested(
    members: list[Execution],
    below: str | None,
    events: dict[str, list[Event]] | None = None,
) -> list[dict[str, Any]]:
    """The tree as JSON data: each execution's fields plus its ``children`` (by start time).

    With ``events``, each execution also has its ``events``.

    An execution whose parent is not among ``members`` is a root; an execution only reachable
    through a cycle (hand-edited data) becomes a root too, and none appears twice.
    """
    by_id = {e.execution_id: e for e in members}
    children: dict[str | None, list[Execution]] = {}
    for e in members:  # ordered by start time, so every list of children is too
        parent = e.parent_execution_id
        if parent not in by_id or parent == e.execution_id:
            parent = None
        children.setdefault(parent, []).append(e)
    seen: set[str] = set()

    def node_of(e: Execution) -> dict[str, Any]:
        data = e.to_dict()
        if events is not None:
            data["events"] = [ev.to_dict() for ev in events.get(e.execution_id, ())]
        return data | {"children": []}

    def build(top: Execution) -> dict[str, Any]:
        root = node_of(top)
        seen.add(top.execution_id)
        stack = [(top, root)]
        while stack:  # no recursion: a tree may be deeper than Python's recursion limit
            e, node = stack.pop()
            for kid in children.get(e.execution_id, []):
                if kid.execution_id not in seen:
                    seen.add(kid.execution_id)
                    kid_node = node_of(kid)
                    node["children"].append(kid_node)
                    stack.append((kid, kid_node))
        return root

    if below is not None:
        return [build(by_id[below])]
    roots = [build(e) for e in children.get(None, [])]
    roots.extend(build(e) for e in members if e.execution_id not in seen)
    return roots


def _dumps_nested(roots: list[dict[str, Any]]) -> str:
    """Compact JSON of nested trees, without recursion (orjson stops at 254 levels)."""
    out: list[str] = ["["]
    stack: list[str | dict[str, Any]] = ["]"]
    for i in range(len(roots) - 1, -1, -1):
        stack.append(roots[i])
        if i:
            stack.append(",")
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        fields = {key: value for key, value in item.items() if key != "children"}
        out.append(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS).decode()[:-1])
        out.append(',"children":[')
        stack.append("]}")
        kids = item["children"]
        for i in range(len(kids) - 1, -1, -1):
            stack.append(kids[i])
            if i:
                stack.append(",")
    return "".join(out)


def cmd_tree(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog tree ID | --last``."""
    newest = args.last or args.name is not None
    if bool(args.id) == newest:
        msg = "give either an execution id or --last"
        raise CLIError(msg)
    with open_db(args.db) as store:
        anchor = _newest_root(store, args.name) if newest else _get(store, args.id)
        members = store.correlation_chain(anchor.correlation_id)
        if anchor.execution_id not in {e.execution_id for e in members}:
            members.append(anchor)
        events = (
            {e.execution_id: store.events(e.execution_id) for e in members} if args.events else None
        )
    below = anchor.execution_id if args.below else None
    if args.json:
        trees = _nested(members, below, events)
        try:
            term.json(trees)
        except orjson.JSONEncodeError:  # deeper than orjson nests
            term.print(_dumps_nested(trees))
        return 0
    highlight = anchor.execution_id if args.id and not args.below else None
    term.print(
        r.tree(
            members,
            term.style,
            width=term.width,
            below=below,
            highlight=highlight,
            events=events,
        )
    )
    return 0


def cmd_lineage(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog lineage ID``."""
    with open_db(args.db) as store:
        lineage = store.lineage(_get(store, args.id).execution_id, depth=args.depth)
    e = lineage.execution
    if args.json:
        term.json(lineage.to_dict())
        return 0
    members = [*lineage.ancestors, e, *lineage.siblings, *lineage.descendants]
    term.print(
        term.style.dim(
            f"{_count(len(lineage.ancestors), 'ancestor')}, "
            f"{_count(len(lineage.siblings), 'sibling')}, "
            f"{_count(len(lineage.descendants), 'descendant')} (depth {args.depth})"
        )
    )
    term.print(r.tree(members, term.style, width=term.width, highlight=e.execution_id))
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def cmd_chain(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog chain CORRELATION_ID``."""
    with open_db(args.db) as store:
        members = store.correlation_chain(_resolve(store, args.correlation_id, correlation=True))
        short = {} if args.json else _id_column(store, term, [e.execution_id for e in members])
    if not members:
        msg = f"no executions with correlation id {args.correlation_id}"
        raise CLIError(msg)
    if args.json:
        term.json([e.to_dict() for e in members])
        return 0
    start = members[0].started_at
    rows = [
        [
            "+" + r.duration_text((e.started_at - start).total_seconds() * 1000),
            short[e.execution_id],
            e.name,
            e.trigger_kind,
            e.status,
            r.duration_text(e.duration_ms),
        ]
        for e in members
    ]
    term.print(f"{r.time_text(start)} UTC")
    term.print(
        r.table(
            ["AT", "ID", "NAME", "TRIGGER", "STATUS", "DURATION"],
            rows,
            width=term.width,
            flex=[2],
            right=[0, 5],
            paint={4: term.style.status},
            keep=[1],
        )
    )
    return 0


def _stat(item: Any) -> dict[str, Any]:
    if hasattr(item, "to_dict"):
        data: dict[str, Any] = item.to_dict()
        return data
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return {name: getattr(item, name) for name in _STAT_FIELDS}


def cmd_stats(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog stats``."""
    with open_db(args.db) as store:
        found = [_stat(s) for s in store.stats(name=args.name, since=args.since)]
    if args.json:
        term.json(found)
        return 0
    if not found:
        term.note("no matching executions")
        return 0
    rows = [
        [
            str(s["name"]),
            str(s["count"]),
            str(s["errors"]),
            f"{(s['error_rate'] or 0) * 100:.1f}%",
            r.duration_text(s["p50_ms"]),
            r.duration_text(s["p95_ms"]),
            r.duration_text(s["max_ms"]),
        ]
        for s in found
    ]
    term.print(
        r.table(
            ["NAME", "COUNT", "ERRORS", "ERROR RATE", "P50", "P95", "MAX"],
            rows,
            width=term.width,
            flex=[0],
            right=[1, 2, 3, 4, 5, 6],
        )
    )
    return 0


def cmd_prune(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog prune --older-than AGE``."""
    try:
        cutoff = dt.datetime.now(_UTC) - args.older_than
    except OverflowError:
        msg = f"--older-than is too large: {args.older_than}"
        raise CLIError(msg) from None
    if not args.yes and not _isatty(term.stdin):
        msg = "prune deletes executions: confirm with --yes (there is no terminal to ask on)"
        raise CLIError(msg)
    with open_db(args.db) as store:
        if not args.yes:
            doomed = store.prune(older_than=args.older_than, dry_run=True)
            if doomed:
                _confirm(
                    term,
                    f"Delete {_count(doomed, 'execution')} from {args.db} (every tree whose "
                    f"root started before {r.time_text(cutoff)} UTC)?",
                )
        deleted = store.prune(older_than=args.older_than)
    if args.json:
        term.json({"deleted": deleted, "cutoff": cutoff.isoformat()})
    else:
        term.print(f"deleted {_count(deleted, 'execution')}")
    return 0


def _confirm(term: Terminal, question: str) -> None:
    term.stderr.write(f"{question} [y/N] ")
    term.stderr.flush()
    answer = term.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        msg = "nothing deleted"
        raise CLIError(msg)


def _pages(store: Store, args: argparse.Namespace) -> Iterator[list[Execution]]:
    """Every execution from ``since`` to ``until``, newest first, a page at a time.

    Keyset paging on ``started_at``: each query starts just after the oldest row already
    written (``until`` = its start + 1µs) and skips the rows of that same microsecond that were
    already written, so neither a large history nor rows recorded meanwhile shift the pages.
    """
    until: dt.datetime | None = args.until
    skip = 0
    while True:
        page = store.list(since=args.since, until=until, limit=PAGE, offset=skip)
        if not page:
            return
        yield page
        if len(page) < PAGE:
            return
        oldest = page[-1].started_at
        tied = sum(1 for e in page if e.started_at == oldest)
        if until is not None and until == oldest + dt.timedelta(microseconds=1):
            skip += tied
        else:
            until, skip = oldest + dt.timedelta(microseconds=1), tied


def cmd_export(args: argparse.Namespace, term: Terminal) -> int:
    """``execlog export``: JSON Lines on stdout, streamed."""
    progress = _isatty(term.stderr)
    written = 0
    with open_db(args.db) as store:
        for page in _pages(store, args):
            term.stdout.write("".join(orjson.dumps(e.to_dict()).decode() + "\n" for e in page))
            written += len(page)
            if progress and written >= PROGRESS_AFTER:
                term.stderr.write(f"\rexported {written:,} executions…")
                term.stderr.flush()
    term.stdout.flush()
    if progress and written >= PROGRESS_AFTER:
        term.stderr.write(f"\rexported {written:,} executions \n")
    return 0


COMMANDS = {
    "list": cmd_list,
    "show": cmd_show,
    "tree": cmd_tree,
    "lineage": cmd_lineage,
    "chain": cmd_chain,
    "stats": cmd_stats,
    "prune": cmd_prune,
    "export": cmd_export,
}
