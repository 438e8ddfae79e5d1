"""The web UI's side of authentication: sign in with an API key, sign out, and the hook the
API's auth calls to accept a session cookie instead of a Bearer key."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from fabflow.web.sessions import COOKIE, CSRF_HEADER, Session, SessionStore, same_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGNIN_COOKIE = "fabflow_signin"  # double-submit token of the sign-in form (no session yet)


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.web_sessions
    return store


def current_session(request: Request) -> Session | None:
    return sessions_of(request).get(request.cookies.get(COOKIE))


def session_key(request: Request) -> str | None:
    """The API key behind the request's session cookie; unsafe methods need the CSRF token."""
    session = current_session(request)
    if session is None:
        return None
    given = request.headers.get(CSRF_HEADER)
    if request.method not in SAFE_METHODS and not same_token(given, session.csrf):
        raise HTTPException(403, "missing or wrong X-CSRF-Token: reload the page and try again")
    return session.api_key


def secure(request: Request) -> bool:
    """Mark cookies Secure when the browser reached us over https."""
    public_url: str = request.app.state.settings.public_url
    return request.url.scheme == "https" or public_url.startswith("https://")


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def set_signin_cookie(request: Request, response: Response, token: str) -> None:
    """The sign-in form's token as a cookie; the form posts it back as a field (double submit),
    so another site cannot sign a browser in under its own key."""
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/signin",
        max_age=3600,
    )


# A path on this site: one leading "/", then printable ASCII with no backslash (browsers read
# "/\x" as "//x") and no whitespace (they drop tabs and newlines, so "/\t/x" would become "//x").
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-~]*")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path on this site, never another host."""
    if not target or not _LOCAL_PATH.fullmatch(target) or "\\" in target:
        return "/orders"
    return target


def to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
