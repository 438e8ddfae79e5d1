"""API keys at the HTTP edge: ``Authorization: Bearer <key>`` names the tenant of a request.

A UI composed into the app (``create_app(session_key=...)``) may name the key another way, from
a browser session; the API itself knows nothing of sessions or cookies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from fabflow.api.errors import Unauthorized
from fabflow.store.repository import Store

MAX_KEY_LENGTH = 200
KEY_SHOWN = 10  # the characters of a key that may be shown: the prefix `fabflow apikey list` shows
# Keys are looked up at most once a second each: a revoked key stops working within that.
AUTH_CACHE_SECONDS = 1.0
_CACHE_LIMIT = 10_000

SessionKey = Callable[[Request], str | None]
"""Reads the API key behind a request's browser session (None: no session); it may refuse the
request with an HTTP error (a missing CSRF token, say)."""

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key of your tenant: `fabflow apikey create --tenant NAME` prints one.",
)


class AuthCache:
    """Valid keys seen lately (only valid ones: an unknown key is looked up every time)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._valid: dict[str, tuple[str, float]] = {}

    def get(self, secret: str) -> str | None:
        found = self._valid.get(secret)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, secret: str, tenant_id: str) -> None:
        if self.seconds <= 0:
            return
        if len(self._valid) >= _CACHE_LIMIT:
            self._valid.clear()
        self._valid[secret] = (tenant_id, time.monotonic() + self.seconds)


@dataclass(frozen=True)
class Auth:
    """How one app tells a request's tenant: its cache of valid keys, and the reader of a
    composed UI's sessions (None: Bearer keys only)."""

    cache: AuthCache
    session_key: SessionKey | None = None


def _store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_store(request: Request) -> Store:
    # async: FastAPI would run a plain def in its threadpool, a hop that costs more than this.
    return _store_of(request)


async def tenant_id(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The tenant of the request's key; 401 without a valid, unrevoked key."""
    auth: Auth = request.app.state.auth
    secret = _secret(request, credentials, auth.session_key)
    found = auth.cache.get(secret)
    if found is None and len(secret) <= MAX_KEY_LENGTH:
        found = await run_in_threadpool(_store_of(request).authenticate, secret)
        if found is not None:
            auth.cache.put(secret, found)
    if found is None:
        raise Unauthorized("the API key is unknown or revoked")
    return found


def key_tenant(request: Request, secret: str) -> str | None:
    """The tenant of an API key, or None when it is unknown or revoked (the same cache and
    lookup as a Bearer request; call it off the event loop)."""
    auth: Auth = request.app.state.auth
    found = auth.cache.get(secret)
    if found is None and len(secret) <= MAX_KEY_LENGTH:
        found = _store_of(request).authenticate(secret)
        if found is not None:
            auth.cache.put(secret, found)
    return found


def _secret(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    session_key: SessionKey | None,
) -> str:
    if credentials is not None:
        return credentials.credentials
    # A session only without a Bearer key: its checks (CSRF) must not refuse a keyed request.
    secret = None if session_key is None else session_key(request)
    if secret is None:
        raise Unauthorized("this route needs the header 'Authorization: Bearer <api key>'")
    return secret


async def acting_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    tenant: Annotated[str, Depends(tenant_id)],
) -> str:
    """Who acts, for the record: the request's key as operators know it (its id and label),
    and whether it came through a browser session. Authenticated first, as ``Tenant`` is."""
    auth: Auth = request.app.state.auth
    if credentials is not None:
        return await _named(request, credentials.credentials)
    return "web session, " + await _named(request, _secret(request, None, auth.session_key))


async def _named(request: Request, secret: str) -> str:
    """A key as ``fabflow apikey list`` shows it: its id and label (``key key_... (label)``),
    so the record says which key to revoke."""
    found = await run_in_threadpool(_store_of(request).key_identity, secret)
    if found is None:  # revoked and gone meanwhile: its first characters
        return f"key {secret[:KEY_SHOWN]}"
    return f"key {found['id']}" + (f" ({found['label']})" if found["label"] else "")


async def request_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _tenant: Annotated[str, Depends(tenant_id)],
) -> str:
    """The API key the request authenticated with (a Bearer key, or its UI session's), for a
    long request that must notice when the key is revoked. Authenticated first."""
    if credentials is not None:
        return credentials.credentials
    auth: Auth = request.app.state.auth
    return _secret(request, None, auth.session_key)


Tenant = Annotated[str, Depends(tenant_id)]
RequestKey = Annotated[str, Depends(request_key)]
Actor = Annotated[str, Depends(acting_key)]
StoreDep = Annotated[Store, Depends(get_store)]
