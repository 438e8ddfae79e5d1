"""The tenant's audit trail: what operators did outside any one order (flows saved and
archived, API keys created and revoked, bulk actions), each with who did it and when.

What they did to one order (retry, rerun, cancel, confirm, reject) is on that order's events,
with the same ``by``; a bulk action is on each order it touched and, once, here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from fabflow.resources import iso
from fabflow.store.schema import audit_events

if TYPE_CHECKING:
    from fabflow.store.repository import Store

MAX_PAGE = 200


def record(
    conn: Connection,
    tenant_id: str,
    kind: str,
    subject: str,
    data: dict[str, Any],
    by: str | None,
) -> None:
    """Add one audit event in the caller's transaction (so it exists exactly when the action
    took effect)."""
    row = {
        "tenant_id": tenant_id,
        "kind": kind,
        "subject": subject[:200],
        "data": data,
        "by": None if by is None else by[:200],
        "at": time.time(),
    }
    conn.execute(insert(audit_events), row)


def audit_trail(
    store: Store, tenant_id: str, *, before: int | None = None, limit: int = 50
) -> dict[str, Any]:
    """The tenant's audit events, newest first: ``{"events", "nextCursor"}`` (pass
    ``nextCursor`` as ``before`` for the next page; None at the end)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(audit_events).where(audit_events.c.tenant_id == tenant_id)
    if before is not None:
        query = query.where(audit_events.c.id < before)
    query = query.order_by(audit_events.c.id.desc()).limit(limit + 1)
    with store.read() as conn:
        rows = conn.execute(query).mappings().all()
    shown = [
        {
            "id": r["id"],
            "kind": r["kind"],
            "subject": r["subject"],
            "data": r["data"],
            "by": r["by"],
            "at": iso(r["at"]),
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return {"events": shown, "nextCursor": shown[-1]["id"] if more else None}
