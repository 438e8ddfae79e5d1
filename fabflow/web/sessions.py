"""Sessions of the web UI: a random id in an HttpOnly cookie, the API key kept server-side.

A session holds the API key it was opened with, so every request made through it is checked
exactly like a Bearer request (a revoked key ends the session within the auth cache period).
Each session has its own CSRF token; the pages' JavaScript sends it in ``X-CSRF-Token`` on every
unsafe request, and forms send it as a field.

Sessions live in the store (``web_sessions``), so any API node behind a balancer serves them
and a restart keeps them. A row is keyed by the cookie's sha256 and holds the API key sealed
(AES-GCM) under a key derived from the cookie: the table alone opens no session and shows no
key. Each node keeps the sessions it read for ``CACHE_SECONDS``, so a sign-out on another
node takes effect within that, and writes a session's idle clock at most every
``TOUCH_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fabflow.store import web_sessions as rows
from fabflow.store.repository import Store

COOKIE = "fabflow_session"
CSRF_HEADER = "x-csrf-token"
IDLE_SECONDS = 12 * 3600.0
LIFETIME_SECONDS = 7 * 24 * 3600.0
CACHE_SECONDS = 1.0
TOUCH_SECONDS = 60.0
SWEEP_SECONDS = 600.0  # expired rows are deleted at a sign-in at most this often
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Session:
    """What the server remembers about one signed-in browser (times: Unix seconds)."""

    tenant: str
    api_key: str
    csrf: str
    created: float
    seen: float


def _digest(session_id: str) -> str:
    # Keyed by a digest: the table never holds a cookie value that could be replayed.
    return hashlib.sha256(session_id.encode()).hexdigest()


def _sealer(session_id: str) -> AESGCM:
    return AESGCM(hmac.digest(session_id.encode(), b"fabflow web session key", "sha256"))


def _seal(session_id: str, api_key: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _sealer(session_id).encrypt(nonce, api_key.encode(), _digest(session_id).encode())
    return base64.b64encode(nonce + sealed).decode()


def _unseal(session_id: str, sealed: str) -> str | None:
    raw = base64.b64decode(sealed)
    try:
        opened = _sealer(session_id).decrypt(raw[:12], raw[12:], _digest(session_id).encode())
    except InvalidTag:
        return None
    return opened.decode()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class SessionStore:
    """Sessions in ``store``, expiring after idle time and a maximum lifetime, with a short
    per-node cache (thread-safe)."""

    def __init__(
        self,
        store: Store,
        idle_seconds: float = IDLE_SECONDS,
        lifetime_seconds: float = LIFETIME_SECONDS,
    ) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self._cache: dict[str, tuple[Session, float]] = {}  # digest: (session, read at)
        self._lock = threading.Lock()
        self._swept = 0.0

    def open(self, tenant: str, api_key: str) -> tuple[str, Session]:
        """A new session: ``(cookie value, session)``. Writes to the store: call it off the
        event loop."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(tenant, api_key, secrets.token_urlsafe(32), now, now)
        row = {
            "id": _digest(session_id),
            "tenant_id": tenant,
            "sealed_key": _seal(session_id, api_key),
            "csrf": session.csrf,
            "created_at": now,
            "seen_at": now,
        }
        rows.add_session(self.store, row)
        if now - self._swept > SWEEP_SECONDS:
            self._swept = now
            rows.remove_expired(self.store, now - self.idle_seconds, now - self.lifetime_seconds)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie value, or None. Reads the store at most once a
        ``CACHE_SECONDS`` per session, and restarts its idle clock."""
        if not session_id:
            return None
        key = _digest(session_id)
        now = time.time()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return None if self._expired(cached[0], now) else cached[0]
        session = self._read(session_id, key, now)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            if session is None:
                self._cache.pop(key, None)
            else:
                self._cache[key] = (session, now)
        return session

    def close(self, session_id: str | None) -> None:
        """End a session on every node (on others within ``CACHE_SECONDS``)."""
        if session_id:
            key = _digest(session_id)
            with self._lock:
                self._cache.pop(key, None)
            rows.remove_session(self.store, key)

    def _read(self, session_id: str, key: str, now: float) -> Session | None:
        row = rows.find_session(self.store, key)
        if row is None:
            return None
        api_key = _unseal(session_id, row["sealed_key"])
        if api_key is None:
            return None
        session = Session(row["tenant_id"], api_key, row["csrf"], row["created_at"], now)
        if self._expired(replace(session, seen=row["seen_at"]), now):
            rows.remove_session(self.store, key)
            return None
        if now - row["seen_at"] > TOUCH_SECONDS:
            rows.touch_session(self.store, key, now)
        return session

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.seen > self.idle_seconds or now - session.created > self.lifetime_seconds
        )
