"""The web UI's sessions in the store: rows of ``web_sessions``, which any API node reads.

The UI (``fabflow.web.sessions``) decides what a row holds and when it expires; this module
only reads and writes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from fabflow.store.repository import Store
from fabflow.store.schema import web_sessions


def add_session(store: Store, row: dict[str, Any]) -> None:
    with store.write() as conn:
        conn.execute(insert(web_sessions), row)


def find_session(store: Store, session_id: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(select(web_sessions).where(web_sessions.c.id == session_id)).first()
    return None if row is None else dict(row._mapping)


def touch_session(store: Store, session_id: str, seen_at: float) -> None:
    with store.write() as conn:
        conn.execute(
            update(web_sessions).where(web_sessions.c.id == session_id).values(seen_at=seen_at)
        )


def remove_session(store: Store, session_id: str) -> None:
    with store.write() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))


def remove_expired(store: Store, seen_before: float, created_before: float) -> int:
    """Delete the sessions idle since ``seen_before`` or opened before ``created_before``."""
    with store.write() as conn:
        gone = conn.execute(
            delete(web_sessions).where(
                or_(
                    web_sessions.c.seen_at < seen_before,
                    web_sessions.c.created_at < created_before,
                )
            )
        )
    return int(gone.rowcount or 0)
