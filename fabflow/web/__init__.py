"""The operator's web UI: sign-in sessions, pages and static assets.

``install(app)`` adds it to an API app; the API's auth accepts the UI's session cookie (with its
CSRF token on unsafe requests) where it would take a Bearer key when that app was built with
``create_app(session_key=web.session_key)``. ``fabflow.server`` does both.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from fabflow.web import pages
from fabflow.web.auth import session_key
from fabflow.web.sessions import SessionStore

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI, sessions: SessionStore | None = None) -> None:
    """Serve the UI at ``/`` and its assets at ``/static`` on ``app``; its sessions live in
    the app's store unless ``sessions`` says otherwise."""
    app.state.web_sessions = sessions if sessions is not None else SessionStore(app.state.store)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_errors = app.exception_handlers[StarletteHTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        """A page path nobody serves gets an HTML 404; the API's paths keep their JSON."""
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404 and not path.startswith(("/api/", "/static/", "/metrics")):
            return pages.not_found_page(request)
        answer = api_errors(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, not_found)


__all__ = ["SessionStore", "install", "session_key"]
