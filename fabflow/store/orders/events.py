"""The events of orders: what happened, in order, for timelines and live updates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from fabflow.resources import iso
from fabflow.store.orders.read import get_order_row
from fabflow.store.repository import Store
from fabflow.store.schema import events


def order_events(
    store: Store, tenant_id: str, order_id: str, after: int = 0
) -> list[dict[str, Any]]:
    get_order_row(store, tenant_id, order_id)
    query = (
        select(events)
        .where(events.c.order_id == order_id, events.c.tenant_id == tenant_id, events.c.id > after)
        .order_by(events.c.id)
    )
    with store.read() as conn:
        return [
            {"id": r["id"], "kind": r["kind"], "data": r["data"], "at": iso(r["at"])}
            for r in conn.execute(query).mappings()
        ]


def tenant_events(
    store: Store, tenant_id: str, after: int = 0, limit: int = 500
) -> list[dict[str, Any]]:
    """The tenant's events with an id above ``after``, oldest first (for live updates)."""
    query = (
        select(events.c.id, events.c.order_id, events.c.kind, events.c.data, events.c.at)
        .where(events.c.tenant_id == tenant_id, events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    with store.read() as conn:
        return [
            {"id": r.id, "orderId": r.order_id, "kind": r.kind, "data": r.data, "at": iso(r.at)}
            for r in conn.execute(query)
        ]


def last_event_id(store: Store, tenant_id: str) -> int:
    """The id of the tenant's newest event (0 when none)."""
    query = select(func.max(events.c.id)).where(events.c.tenant_id == tenant_id)
    with store.read() as conn:
        return int(conn.execute(query).scalar() or 0)
