"""The web viewer: runs, a trace's waterfall, one execution (with a retry's diff), statistics.

A page is a view function and a Jinja2 template (autoescaped); views ask the public
:class:`~execlog.Store` and hand plain data to the template.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["mount_static", "not_found", "router", "wants_page"]

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)


def mount_static(app: FastAPI) -> None:
    """Serve the package's ``static/`` directory under ``/static``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def wants_page(request: Request) -> bool:
    """Whether a request is for a page (not the API nor a static file)."""
    path = request.url.path
    return not path.startswith(("/api/", "/static/"))


def not_found(request: Request, detail: str) -> HTMLResponse:
    """The page shown for an unknown id or address."""
    del request
    return HTMLResponse(f"<!doctype html><title>Not found</title><p>{detail}</p>", 404)
