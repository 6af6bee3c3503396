"""``execlog serve``: the web viewer, the JSON API and the collector (extra ``execlog[server]``).

Example::

    from execlog import open_store
    from execlog.server import create_app

    app = create_app(open_store("runs.db"), token="s3cret")   # any ASGI server runs it

``import execlog`` never imports this package or its dependencies (FastAPI, Jinja2); only
``execlog serve`` and programs that import it do. Everything here reads and writes through the
public :class:`~execlog.Store`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from execlog.server.app import MAX_BODY_BYTES, create_app, is_loopback

__all__ = ["MAX_BODY_BYTES", "create_app", "is_loopback"]
