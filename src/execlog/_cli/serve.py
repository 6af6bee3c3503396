"""``execlog serve``: parse the options, open the store, hand the app to uvicorn."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from execlog._cli import CLIError

if TYPE_CHECKING:
    import argparse

    from execlog._cli.commands import Terminal

__all__ = ["cmd_serve"]


def cmd_serve(args: argparse.Namespace, term: Terminal) -> int:
    """Serve the viewer, the JSON API and the collector until interrupted."""
    try:
        import uvicorn  # noqa: PLC0415 - the server extra

        from execlog.server import create_app, is_loopback  # noqa: PLC0415
    except ImportError as exc:
        msg = f"execlog serve needs the server extra: pip install 'execlog[server]' ({exc})"
        raise CLIError(msg) from None
    from execlog import StoreError, open_store  # noqa: PLC0415
    from execlog._storage import is_http  # noqa: PLC0415

    token = args.token or os.environ.get("EXECLOG_TOKEN") or None
    public = not is_loopback(args.host)
    if public and not token:
        msg = (
            f"refusing to listen on {args.host} without a token: anyone who can reach it could "
            "read the history and write to it. Give --token TOKEN (or set EXECLOG_TOKEN), or "
            "listen on 127.0.0.1"
        )
        raise CLIError(msg, code=2)
    if is_http(args.db):
        msg = f"--db must be a database, not a server URL ({args.db})"
        raise CLIError(msg, code=2)
    try:
        store = open_store(args.db, create=True)  # a new collector starts with an empty one
        ingest = open_store(args.db)  # its own connection: long reads never hold up a batch
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    app = create_app(store, token, public=public, loopback_only=not public, ingest_store=ingest)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    term.note(
        f"execlog serving {args.db} at http://{shown}:{args.port}/"
        + (" (token required)" if public else " (token required for POST)" if token else "")
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
            server_header=False,
            proxy_headers=False,
        )
    finally:
        store.close()
        ingest.close()
    return 0
