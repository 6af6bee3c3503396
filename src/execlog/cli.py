"""The ``execlog`` command line (also ``python -m execlog``).

Example::

    execlog list --status error --since 1h
    execlog tree --last
    execlog show 01935f0c-...
    execlog run -- python job.py

``import execlog`` never imports this module: the command line costs nothing to programs that
only record.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from execlog._cli.commands import Terminal

__all__ = ["main"]

_DEFAULT_DB = "./execlog.db"
_STATUSES = ("running", "success", "error", "partial", "cancelled", "abandoned")
_DB_HELP = "the database (default: $EXECLOG_DB, else ./execlog.db)"


class _Bounded:
    """An argparse ``type`` for a whole number in ``low..high``; anything else is a usage error.

    argparse reports the ``ArgumentTypeError`` with the option's name and the usage, exit 2.
    """

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.__name__ = "count"

    def __call__(self, text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            value = None
        if value is None or not self.low <= value <= self.high:
            msg = f"invalid value {text!r}: use a whole number from {self.low} to {self.high:,}"
            raise argparse.ArgumentTypeError(msg)
        return value


#: ``--limit``: rows per listing (``execlog export`` streams any number).
LIMIT = _Bounded(1, 1_000_000)
#: ``--offset``: rows skipped.
OFFSET = _Bounded(0, 1_000_000_000)
#: ``--depth``: levels walked up and down (as the HTTP API allows).
DEPTH = _Bounded(0, 1000)


#: ``--port`` of ``execlog serve``.
PORT = _Bounded(0, 65535)


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per option
    from execlog import __version__  # noqa: PLC0415 - only the CLI needs it
    from execlog._cli.times import age, moment  # noqa: PLC0415

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=_DB_HELP)

    parser = argparse.ArgumentParser(
        prog="execlog",
        description="Query the execution history recorded by execlog, or record a command.",
        epilog="Run 'execlog COMMAND --help' for the options of one command.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"execlog {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)

    def command(
        name: str, summary: str, description: str, usage: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            usage=usage,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def json_flag(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--json", action="store_true", help=f"print {what} as JSON")

    since_help = (
        "started at or after WHEN: an age (30m, 1h, 7d), a date (2026-11-01) or an ISO datetime"
    )

    p = command(
        "list",
        "list executions, newest first",
        "List executions, newest first. Filters combine; times are UTC.",
    )
    p.add_argument("--name", help="only executions with exactly this name")
    p.add_argument(
        "--status",
        choices=_STATUSES,
        metavar="STATUS",
        help=f"only executions with this status: {', '.join(_STATUSES)}",
    )
    p.add_argument("--since", type=moment, metavar="WHEN", help=since_help)
    p.add_argument("--until", type=moment, metavar="WHEN", help="started before WHEN")
    p.add_argument(
        "--limit",
        type=LIMIT,
        default=20,
        metavar="N",
        help="at most N, 1 to 1,000,000 (default 20)",
    )
    p.add_argument(
        "--offset", type=OFFSET, default=0, metavar="N", help="skip the first N (default 0)"
    )
    json_flag(p, "a list of executions")

    p = command(
        "show",
        "show every field of one execution",
        "Show every field of one execution: inputs, output and tags pretty-printed, the\n"
        "traceback of an error, and its events (execlog.event calls, log records).",
    )
    p.add_argument("id", metavar="ID", help="the execution id")
    json_flag(p, "the execution")

    p = command(
        "tree",
        "show a correlation's execution tree as a text waterfall",
        "Show the execution tree of ID's correlation, one line per execution with its status,\n"
        "duration and a bar on the tree's timeline; ID is marked with ◀. Without ID: --last\n"
        "draws the newest run (the newest root execution that has children), --name NAME the\n"
        "newest root execution called NAME.",
    )
    p.add_argument("id", metavar="ID", nargs="?", help="any execution of the tree")
    p.add_argument(
        "--last",
        action="store_true",
        help="the tree of the newest root execution that has children",
    )
    p.add_argument(
        "--name", metavar="NAME", help="the tree of the newest root execution named NAME"
    )
    p.add_argument("--below", action="store_true", help="only ID and what it called")
    p.add_argument("--events", action="store_true", help="show each execution's events under it")
    json_flag(p, "the tree (nested, each execution with its 'children')")

    p = command(
        "lineage",
        "show an execution's ancestors, siblings and descendants",
        "Show an execution's lineage: its ancestors (root first), its siblings (same parent)\n"
        "and its descendants, drawn as a tree.",
    )
    p.add_argument("id", metavar="ID", help="the execution id")
    p.add_argument(
        "--depth",
        type=DEPTH,
        default=20,
        metavar="N",
        help="levels up and down, 0 to 1000 (default 20)",
    )
    json_flag(p, "{execution, ancestors, descendants, siblings}")

    p = command(
        "chain",
        "list every execution of one correlation, by start time",
        "List every execution sharing CORRELATION_ID, in the order they started.",
    )
    p.add_argument("correlation_id", metavar="CORRELATION_ID", help="the correlation id")
    json_flag(p, "a list of executions")

    p = command(
        "stats",
        "count, errors and p50/p95/max duration per name",
        "Per execution name: how many ran, how many failed, and p50/p95/max duration.",
    )
    p.add_argument("--name", help="only this name")
    p.add_argument("--since", type=moment, metavar="WHEN", help=since_help)
    json_flag(p, "a list of per-name statistics")

    p = command(
        "prune",
        "delete old execution trees",
        "Delete every execution tree whose root started more than AGE ago (whole trees:\n"
        "no orphans are left). Asks first on a terminal; elsewhere it needs --yes.",
    )
    p.add_argument(
        "--older-than",
        type=age,
        required=True,
        metavar="AGE",
        help="e.g. 30d, 12h, 2w (required)",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    json_flag(p, "{deleted, cutoff}")

    p = command(
        "export",
        "write executions to stdout as JSON Lines",
        "Write executions to stdout, one JSON object per line, newest first. Streams page by\n"
        "page (any size of history), with progress on stderr for large exports to a terminal.\n"
        "\n"
        "  execlog export --since 7d > last-week.jsonl",
    )
    p.add_argument(
        "--format", choices=("jsonl",), default="jsonl", help="output format (default jsonl)"
    )
    p.add_argument("--since", type=moment, metavar="WHEN", help=since_help)
    p.add_argument("--until", type=moment, metavar="WHEN", help="started before WHEN")

    p = command(
        "serve",
        "serve the web viewer, the JSON API and the collector",
        "Serve the web viewer at /, the JSON API under /api and the collector (POST\n"
        "/api/executions) for processes configured with db='http://HOST:PORT'. Needs the\n"
        "server extra: pip install 'execlog[server]'. Listens on 127.0.0.1 unless told\n"
        "otherwise; beyond loopback a token is required for every request.\n"
        "\n"
        "  execlog serve --db runs.db --port 8642",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=PORT, default=8642, metavar="PORT", help="port (default 8642)")
    p.add_argument(
        "--token",
        default=None,
        help="bearer token required for POST (and for everything beyond loopback); "
        "default $EXECLOG_TOKEN",
    )
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="warning",
        help="server log level (default warning)",
    )

    p = command(
        "run",
        "run a command and record it as an execution",
        "Run CMD, recording it as an execution (kind 'command': argv, exit code, duration;\n"
        "status error for a non-zero exit, cancelled on Ctrl-C). The command gets\n"
        "EXECLOG_PARENT_ID and EXECLOG_CORRELATION_ID, and EXECLOG_DB unless already set, so\n"
        "a Python program using execlog nests under it. Exits with the command's status.\n"
        "\n"
        "  execlog run --name nightly -- python etl.py --day 2026-11-21",
        usage="execlog run [-h] [--db PATH] [--name NAME] -- CMD [ARGS...]",
    )
    p.add_argument("--name", help="the execution's name (default: the command's file name)")
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- CMD ARGS...",
        help="the command and its arguments",
    )
    return parser


def _handler(name: str) -> Callable[[argparse.Namespace, Terminal], int]:
    if name == "run":
        from execlog._cli.run import cmd_run  # noqa: PLC0415

        return cmd_run
    if name == "serve":
        from execlog._cli.serve import cmd_serve  # noqa: PLC0415

        return cmd_serve
    from execlog._cli.commands import COMMANDS  # noqa: PLC0415

    return COMMANDS[name]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``execlog`` command with ``argv`` (default ``sys.argv[1:]``).

    Example::

        from execlog.cli import main
        main(["list", "--status", "error", "--json"])

    Args:
        argv: The arguments after the program name.

    Returns:
        The exit status: 0 on success, 1 for an error in the data (no such database or id,
        a file that is not an execlog database), 2 for invalid arguments; ``execlog run``
        returns the command's own status.

    .. versionadded:: 0.1.0
    """
    from execlog._cli import CLIError  # noqa: PLC0415
    from execlog._cli.commands import Terminal  # noqa: PLC0415

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.db = getattr(args, "db", None) or os.environ.get("EXECLOG_DB") or _DEFAULT_DB
    term = Terminal.detect()
    try:
        return _handler(args.subcommand)(args, term)
    except CLIError as exc:
        term.note(f"execlog: error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        term.note("")
        return 130
    except BrokenPipeError:  # e.g. `execlog list | head`: the reader has gone, stop quietly
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. under a test runner)
        pass
