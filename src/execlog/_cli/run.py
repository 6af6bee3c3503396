"""``execlog run -- CMD ARGS...``: run a command and record it as one execution.

The command runs with ``EXECLOG_PARENT_ID``/``EXECLOG_CORRELATION_ID`` (and ``EXECLOG_DB``) in
its environment, so a Python program using execlog nests its executions under the command's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any

from execlog._cli import CLIError

if TYPE_CHECKING:
    import argparse

    from execlog._cli.commands import Terminal

__all__ = ["ExitCode", "cmd_run"]


class ExitCode(Exception):  # noqa: N818 - named after what it records, not as an error
    """The command ended with a non-zero status; recorded as the execution's error."""

    # Recorded as ``error_type`` "ExitCode" (bare, like a builtin): the name users query for,
    # not the path of a private module.
    __module__ = "builtins"


def _terminal_sent_sigint() -> bool:
    """Whether a SIGINT we got came from our terminal, which sent it to the child as well.

    The child runs in our process group; when that group is the terminal's foreground group,
    Ctrl-C reached it directly and forwarding would deliver a second SIGINT.
    """
    if not hasattr(os, "tcgetpgrp"):  # pragma: no cover - Windows
        return False
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
    return False


def _supervise(argv: list[str], env: dict[str, str]) -> tuple[int, bool]:
    """Run ``argv`` to completion; return (its return code, whether we were interrupted).

    SIGINT and SIGTERM sent to execlog are passed on to the command (SIGINT only when the
    terminal has not already delivered it), and execlog waits for the command to end.

    Raises:
        OSError: the command cannot be started (not found, not executable).
    """
    proc: subprocess.Popen[bytes] | None = None
    interrupted = False
    pending: list[int] = []  # signals that arrived before the command started

    def forward(signum: int, _frame: Any) -> None:
        nonlocal interrupted
        if signum == signal.SIGINT:
            interrupted = True
            if _terminal_sent_sigint():
                return
        if proc is None:
            pending.append(signum)
            return
        with contextlib.suppress(OSError):
            proc.send_signal(signum)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. `nohup`, `cmd &`: keep
                previous[signum] = signal.signal(signum, forward)
    try:
        proc = subprocess.Popen(argv, env=env)  # noqa: S603 - running the user's command
        for early in pending:
            with contextlib.suppress(OSError):
                proc.send_signal(early)
        returncode = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return returncode, interrupted


def _outcome(returncode: int) -> tuple[int, dict[str, Any], str]:
    """(exit status as a shell reports it, the execution's output, the error message)."""
    if returncode >= 0:
        return returncode, {"exit_code": returncode}, f"exit code {returncode}"
    code = 128 - returncode
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return code, {"exit_code": code, "signal": name}, f"killed by {name} (exit code {code})"


def _start(argv: list[str], env: dict[str, str]) -> tuple[int, int, Any, BaseException | None]:
    """Run the command: (exit status, return code, the execution's output, what to record).

    What to record is None for success, else an exception that was never raised (so the
    recorded traceback is just its one line, not execlog's own frames).

    Raises:
        CLIError: the command cannot be started (exit status 127, or 126 when not executable).
    """
    try:
        returncode, interrupted = _supervise(argv, env)
    except OSError as exc:
        code = 126 if isinstance(exc, PermissionError) else 127
        msg = f"cannot run {argv[0]}: {exc.strerror or exc}"
        raise CLIError(msg, code=code) from exc.with_traceback(None)
    code, output, message = _outcome(returncode)
    if interrupted or returncode == -signal.SIGINT:
        return code, returncode, output, KeyboardInterrupt()
    return code, returncode, output, ExitCode(message) if returncode else None


def cmd_run(args: argparse.Namespace, term: Terminal) -> int:  # noqa: ARG001 - one signature
    """``execlog run``: record the command, pass its exit status through."""
    import execlog  # noqa: PLC0415
    from execlog._cli.commands import _local_path  # noqa: PLC0415
    from execlog._storage import split_password  # noqa: PLC0415

    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        msg = "give the command to run after --, e.g. execlog run -- python job.py"
        raise CLIError(msg, code=2)
    name = args.name or os.path.basename(argv[0]) or argv[0]
    path = _local_path(args.db)
    # A PostgreSQL password reaches the command as libpq's PGPASSWORD, not inside EXECLOG_DB.
    child_db, password = split_password(args.db)
    child_db = os.path.abspath(path) if path is not None else child_db
    execlog.configure(db=args.db)
    handle = execlog.execution(name, kind="command", inputs={"argv": argv})
    recorded: BaseException | None = None
    handle.__enter__()
    try:
        env = execlog.inject(dict(os.environ))
        env.setdefault("EXECLOG_DB", child_db)
        if password is not None and env["EXECLOG_DB"] != os.environ.get("EXECLOG_DB"):
            env.setdefault("PGPASSWORD", password)  # the command records where we do
        code, _, output, recorded = _start(argv, env)
        handle.set_output(output)
    except CLIError as exc:  # the command could not be started
        handle.set_output({"exit_code": exc.code})
        recorded = exc.__cause__
        raise
    except BaseException as exc:  # Ctrl-C while starting, or execlog's own failure
        recorded = exc
        raise
    finally:
        handle.__exit__(
            None if recorded is None else type(recorded),
            recorded,
            None if recorded is None else recorded.__traceback__,
        )
        execlog.flush()
    return code
