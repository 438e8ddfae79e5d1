"""Sessions of the web UI: a random id in an HttpOnly cookie, the API key kept server-side.

A session holds the API key it was opened with, so every request made through it is checked
exactly like a Bearer request (a revoked key ends the session within the auth cache period).
Each session has its own CSRF token; the pages' JavaScript sends it in ``X-CSRF-Token`` on every
unsafe request, and forms send it as a field. Sessions live in this process's memory: a restart
signs everyone out, and several API nodes behind a balancer need sticky sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace

COOKIE = "fabflow_session"
CSRF_HEADER = "x-csrf-token"
IDLE_SECONDS = 12 * 3600.0
LIFETIME_SECONDS = 7 * 24 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    """What the server remembers about one signed-in browser."""

    tenant: str
    api_key: str
    csrf: str
    created: float
    seen: float


def _digest(session_id: str) -> str:
    # Keyed by a digest: the table never holds a cookie value that could be replayed.
    return hashlib.sha256(session_id.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class SessionStore:
    """Sessions in memory, thread-safe, expiring after idle time and a maximum lifetime."""

    def __init__(
        self, idle_seconds: float = IDLE_SECONDS, lifetime_seconds: float = LIFETIME_SECONDS
    ) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, tenant: str, api_key: str) -> tuple[str, Session]:
        """A new session: ``(cookie value, session)``."""
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        session = Session(tenant, api_key, secrets.token_urlsafe(32), now, now)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._drop_oldest()
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie value (its idle clock restarts), or None."""
        if not session_id:
            return None
        key = _digest(session_id)
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                return None
            session = replace(session, seen=now)
            self._sessions[key] = session
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.seen > self.idle_seconds or now - session.created > self.lifetime_seconds
        )

    def _drop_oldest(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].seen)
            del self._sessions[oldest]
