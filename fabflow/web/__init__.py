"""The operator's web UI: sign-in sessions, pages and static assets.

``install(app)`` adds it to an API app; the API's auth accepts the UI's session cookie (with its
CSRF token on unsafe requests) where it would take a Bearer key when that app was built with
``create_app(session_key=web.session_key)``. ``fabflow.server`` does both.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from fabflow.web import pages
from fabflow.web.auth import session_key
from fabflow.web.sessions import SessionStore

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI, sessions: SessionStore | None = None) -> None:
    """Serve the UI at ``/`` and its assets at ``/static`` on ``app``."""
    app.state.web_sessions = sessions if sessions is not None else SessionStore()
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


__all__ = ["SessionStore", "install", "session_key"]
