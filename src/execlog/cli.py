"""The ``execlog`` command line (also ``python -m execlog``).

Example::

    execlog list --status error
    execlog tree --last
    execlog show 01935f0c-...

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Sequence

    from execlog.store import Execution, Store

__all__ = ["main"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    from execlog import __version__  # noqa: PLC0415 - only the CLI needs it

    parser = argparse.ArgumentParser(
        prog="execlog",
        description="Query the execution history recorded by execlog.",
    )
    parser.add_argument("--version", action="version", version=f"execlog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--db",
            default=os.environ.get("EXECLOG_DB") or "./execlog.db",
            help="database file (default: $EXECLOG_DB or ./execlog.db)",
        )
        return p

    p = command("list", "List executions, newest first.")
    p.add_argument("--name", help="only executions with exactly this name")
    p.add_argument("--status", help="only executions with this status")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("show", "Show every field of one execution.")
    p.add_argument("id", help="execution id")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("tree", "Show the execution tree of a correlation as a text waterfall.")
    p.add_argument("id", nargs="?", help="any execution id of the tree")
    p.add_argument("--last", action="store_true", help="the newest root execution")
    p.add_argument("--json", action="store_true", help="print the tree's executions as JSON")
    return parser


def _open(db: str) -> Store:
    from execlog import StoreError, open_store  # noqa: PLC0415 - keep `import execlog.cli` light

    is_path = db != ":memory:" and "://" not in db and not db.startswith("file:")
    if is_path and not os.path.exists(db):
        msg = f"no execlog database at {db}"
        raise CLIError(msg)
    try:
        return open_store(db)
    except StoreError as exc:
        raise CLIError(str(exc)) from None


def _dump(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _style() -> Any:
    from execlog._cli.render import Style  # noqa: PLC0415

    return Style(colour=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def _cmd_list(args: argparse.Namespace) -> int:
    from execlog._cli.render import duration_text, table  # noqa: PLC0415

    with _open(args.db) as store:
        found = store.list(name=args.name, status=args.status, limit=args.limit)
    if args.json:
        _dump([e.to_dict() for e in found])
        return 0
    rows = [
        [
            e.execution_id,
            e.name,
            e.status,
            e.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            duration_text(e.duration_ms),
        ]
        for e in found
    ]
    print(table(["ID", "NAME", "STATUS", "STARTED (UTC)", "DURATION"], rows))  # noqa: T201
    return 0


def _get(store: Store, execution_id: str) -> Execution:
    found = store.get(execution_id)
    if found is None:
        msg = f"no execution with id {execution_id}"
        raise CLIError(msg)
    return found


def _cmd_show(args: argparse.Namespace) -> int:
    with _open(args.db) as store:
        e = _get(store, args.id)
    data = e.to_dict()
    if args.json:
        _dump(data)
        return 0
    style = _style()
    for key, value in data.items():
        if key in {"inputs", "output", "tags", "error_stack"}:
            continue
        shown = style.status(str(value)) if key == "status" else value
        print(f"{key:>20}: {shown}")  # noqa: T201
    for key in ("inputs", "output", "tags"):
        print(f"{key}:")  # noqa: T201
        text = orjson.dumps(data[key], option=orjson.OPT_INDENT_2).decode()
        print("  " + text.replace("\n", "\n  "))  # noqa: T201
    if e.error_stack:
        print("traceback:")  # noqa: T201
        print(e.error_stack.rstrip())  # noqa: T201
    return 0


def _cmd_tree(args: argparse.Namespace) -> int:
    from execlog._cli.render import tree  # noqa: PLC0415

    with _open(args.db) as store:
        if args.last:
            roots = [e for e in store.list(limit=200) if e.parent_execution_id is None]
            if not roots:
                msg = "no root execution recorded yet"
                raise CLIError(msg)
            anchor = roots[0]
        elif args.id:
            anchor = _get(store, args.id)
        else:
            msg = "give an execution id or --last"
            raise CLIError(msg)
        members = store.correlation_chain(anchor.correlation_id)
    if args.json:
        _dump([e.to_dict() for e in members])
        return 0
    root_id = anchor.execution_id if args.id else None
    print(tree(members, _style(), root_id=root_id))  # noqa: T201
    return 0


_COMMANDS = {"list": _cmd_list, "show": _cmd_show, "tree": _cmd_tree}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``execlog`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    .. versionadded:: 0.1.0
    """
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except CLIError as exc:
        print(f"execlog: error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except BrokenPipeError:  # e.g. `execlog list | head`
        return 0
