"""The webhook outbox: events become deliveries, deliveries are claimed, sent and recorded.

``dispatch`` tails the ``events`` table by id from a stored cursor and, in one transaction with
moving the cursor, adds a delivery row for each enabled webhook that wants the event. ``claim``
leases due deliveries, at most one at a time per (webhook, order) and only once the earlier
ones for that order ended: in order per order. A sender that dies leaves a lease that expires,
and the delivery is sent again (at least once; receivers drop repeats by the event id).

On PostgreSQL event ids are handed out before commit, so a later id can be seen before an
earlier one commits: a gap in the ids is waited for (``GapWatch``) before the cursor passes it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fabflow.errors import NotFound
from fabflow.resources import CREATED_STATUS, iso
from fabflow.store.repository import Store
from fabflow.store.schema import (
    events,
    flows,
    orders,
    status_history,
    webhook_cursor,
    webhook_deliveries,
    webhooks,
)
from fabflow.store.webhooks.endpoints import webhook_row
from fabflow.store.webhooks.events import SOURCE_KINDS, event_data, event_id, types_of

CURSOR = "events"
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
RESPONSE_LIMIT = 1024  # characters of an answer kept in the log
D = webhook_deliveries


@dataclass
class GapWatch:
    """Waits ``seconds`` for an event id missing between the cursor and a later id (one of a
    transaction not committed yet), then passes it (its transaction rolled back)."""

    seconds: float = 10.0
    _seen: tuple[int, float] | None = field(default=None, repr=False)

    def usable(self, cursor: int, ids: Sequence[int], now: float) -> int:
        """How many of ``ids`` (ascending, all above ``cursor``) may be dispatched now."""
        expected = cursor + 1
        for i, found in enumerate(ids):
            if found != expected:
                if self._seen is None or self._seen[0] != expected:
                    self._seen = (expected, now)
                if now - self._seen[1] < self.seconds:
                    return i
                self._seen = None
            expected = found + 1
        return len(ids)


def has_enabled_webhooks(store: Store) -> bool:
    """Whether any tenant has an enabled webhook (the idle dispatcher's one cheap read)."""
    with store.read() as conn:
        return (
            conn.execute(select(webhooks.c.id).where(webhooks.c.enabled).limit(1)).first()
            is not None
        )


def dispatch(store: Store, gaps: GapWatch | None = None, limit: int = 500) -> int:
    """Turn the events after the cursor into deliveries; how many deliveries were added."""
    now = time.time()
    try:
        with store.write() as conn:
            hooks = [dict(r) for r in conn.execute(_ENABLED).mappings()]
            if not hooks:
                return 0
            cursor = _lock_cursor(conn, store, min(h["after_event"] for h in hooks), now)
            if cursor is None:
                return 0  # another process dispatches now
            rows = [dict(r) for r in conn.execute(_events_after(cursor, limit)).mappings()]
            if gaps is not None and not store.is_sqlite:
                rows = rows[: gaps.usable(cursor, [r["id"] for r in rows], now)]
            if not rows:
                return 0
            added = _deliveries(conn, hooks, rows, now)
            if added:
                conn.execute(insert(D), added)
            conn.execute(
                update(webhook_cursor)
                .where(webhook_cursor.c.name == CURSOR)
                .values(event_id=rows[-1]["id"], updated_at=now)
            )
            return len(added)
    except IntegrityError:  # another process made the cursor row first: next round
        return 0


_ENABLED = select(
    webhooks.c.id, webhooks.c.tenant_id, webhooks.c.events, webhooks.c.after_event
).where(webhooks.c.enabled)


def _lock_cursor(conn: Connection, store: Store, floor: int, now: float) -> int | None:
    """The cursor, locked for this transaction (made at ``floor`` the first time); None when
    another process holds it. It jumps to ``floor``: no webhook wants older events."""
    query = select(webhook_cursor.c.event_id).where(webhook_cursor.c.name == CURSOR)
    if not store.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).scalar()
    if found is None:
        if not store.is_sqlite and _cursor_exists(conn):
            return None  # locked by another dispatcher
        conn.execute(insert(webhook_cursor).values(name=CURSOR, event_id=floor, updated_at=now))
        return floor
    return max(int(found), floor)


def _cursor_exists(conn: Connection) -> bool:
    query = select(func.count()).select_from(webhook_cursor).where(webhook_cursor.c.name == CURSOR)
    return bool(conn.execute(query).scalar())


def _events_after(cursor: int, limit: int) -> Any:
    return (
        select(
            events.c.id,
            events.c.tenant_id,
            events.c.order_id,
            events.c.kind,
            events.c.data,
            events.c.at,
        )
        .where(events.c.id > cursor)
        .order_by(events.c.id)
        .limit(limit)
    )


def _deliveries(
    conn: Connection, hooks: list[dict[str, Any]], rows: list[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for hook in hooks:
        by_tenant.setdefault(hook["tenant_id"], []).append(hook)
    wanted = [
        (r, types_of(r["kind"], r["data"] or {}))
        for r in rows
        if r["tenant_id"] in by_tenant and r["kind"] in SOURCE_KINDS
    ]
    wanted = [(r, types) for r, types in wanted if types]
    if not wanted:
        return []
    order_ids = sorted({r["order_id"] for r, _ in wanted})
    facts = _orders(conn, order_ids)
    history = _history(conn, order_ids)
    out = []
    for row, types in wanted:
        order = facts.get(row["order_id"])
        if order is None:
            continue  # the order was removed
        status = _status_at(history.get(row["order_id"], []), row["at"])
        for hook in by_tenant[row["tenant_id"]]:
            if row["id"] <= hook["after_event"]:
                continue
            for event_type in types:
                if event_type in hook["events"]:
                    out.append(_delivery(hook, row, event_type, order, status, now))
    return out


def _delivery(
    hook: Mapping[str, Any],
    row: Mapping[str, Any],
    event_type: str,
    order: Mapping[str, Any],
    status: str,
    now: float,
) -> dict[str, Any]:
    eid = event_id(row["id"], event_type)
    payload = {
        "id": eid,
        "type": event_type,
        "createdAt": iso(row["at"]),
        "data": event_data(row["kind"], row["data"] or {}, order, status),
    }
    return {
        "webhook_id": hook["id"],
        "tenant_id": row["tenant_id"],
        "order_id": row["order_id"],
        "event_id": eid,
        "type": event_type,
        "payload": payload,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "retry_until": now + RETRY_SECONDS,
        "created_at": now,
    }


RETRY_SECONDS = 24 * 3600.0  # a delivery is retried for a day, then given up


def _orders(conn: Connection, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    query = (
        select(orders.c.id, orders.c.external_id, flows.c.flow_id)
        .join(flows, flows.c.pk == orders.c.flow_pk)
        .where(orders.c.id.in_(order_ids))
    )
    return {
        r.id: {"id": r.id, "externalId": r.external_id, "flowId": r.flow_id}
        for r in conn.execute(query)
    }


def _history(conn: Connection, order_ids: list[str]) -> dict[str, list[tuple[float, str]]]:
    query = (
        select(status_history.c.order_id, status_history.c.at, status_history.c.status)
        .where(status_history.c.order_id.in_(order_ids))
        .order_by(status_history.c.order_id, status_history.c.id)
    )
    out: dict[str, list[tuple[float, str]]] = {}
    for r in conn.execute(query):
        out.setdefault(r.order_id, []).append((r.at, r.status))
    return out


def _status_at(history: list[tuple[float, str]], at: float) -> str:
    """The order's status at time ``at`` (set in the same transaction as the event)."""
    status = CREATED_STATUS
    for when, value in history:
        if when > at:
            break
        status = value
    return status


# -- sending ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery a sender holds until ``lease_until``; ``attempts`` fences its result."""

    id: int
    webhook_id: str
    url: str
    secret: str
    event_id: str
    payload: dict[str, Any]
    attempts: int
    retry_until: float


def claim(store: Store, lease_seconds: float, limit: int = 20) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries: each the oldest unended one of its (webhook,
    order), of an enabled webhook."""
    now = time.time()
    earlier = D.alias("earlier")
    blocked = exists().where(
        earlier.c.webhook_id == D.c.webhook_id,
        earlier.c.order_id == D.c.order_id,
        earlier.c.state == PENDING,
        earlier.c.id < D.c.id,
    )
    query = (
        select(D.c.id, D.c.attempts)
        .join(webhooks, and_(webhooks.c.id == D.c.webhook_id, webhooks.c.enabled))
        .where(
            D.c.state == PENDING,
            D.c.next_attempt_at <= now,
            or_(D.c.lease_until.is_(None), D.c.lease_until < now),
            ~blocked,
        )
        .order_by(D.c.next_attempt_at, D.c.id)
        .limit(limit)
    )
    if not store.is_sqlite:
        query = query.with_for_update(skip_locked=True, of=D)
    with store.write() as conn:
        won = []
        for delivery_id, attempts in conn.execute(query).all():
            taken = conn.execute(
                update(D)
                .where(D.c.id == delivery_id, D.c.attempts == attempts, D.c.state == PENDING)
                .values(attempts=attempts + 1, lease_until=now + lease_seconds)
            )
            if taken.rowcount == 1:
                won.append(delivery_id)
        if not won:
            return []
        rows = conn.execute(
            select(D, webhooks.c.url, webhooks.c.secret)
            .join(webhooks, webhooks.c.id == D.c.webhook_id)
            .where(D.c.id.in_(won))
            .order_by(D.c.id)
        ).mappings()
        return [
            Claimed(
                r["id"],
                r["webhook_id"],
                r["url"],
                r["secret"],
                r["event_id"],
                dict(r["payload"]),
                r["attempts"],
                r["retry_until"],
            )
            for r in rows
        ]


@dataclass(frozen=True)
class SendResult:
    """How one send went, and what the delivery becomes: ``state`` and, when pending again,
    ``next_attempt_at``."""

    state: str
    next_attempt_at: float | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    response: str | None = None
    error: str | None = None


def record(store: Store, claimed: Claimed, result: SendResult) -> bool:
    """Record a send's result; False when the lease was lost (another sender took it over)."""
    now = time.time()
    values: dict[str, Any] = {
        "state": result.state,
        "lease_until": None,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "response": None if result.response is None else result.response[:RESPONSE_LIMIT],
        "error": result.error,
    }
    if result.state == PENDING:
        values["next_attempt_at"] = result.next_attempt_at or now
    else:
        values["ended_at"] = now
    with store.write() as conn:
        done = conn.execute(
            update(D)
            .where(D.c.id == claimed.id, D.c.attempts == claimed.attempts, D.c.state == PENDING)
            .values(**values)
        )
        return bool(done.rowcount == 1)


# -- the log ---------------------------------------------------------------------------------


def delivery_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    pending = row["state"] == PENDING
    return {
        "id": row["id"],
        "eventId": row["event_id"],
        "type": row["type"],
        "orderId": row["order_id"],
        "state": row["state"],
        "attempts": row["attempts"],
        "statusCode": row["status_code"],
        "latencyMs": None if row["latency_ms"] is None else round(row["latency_ms"], 1),
        "response": row["response"],
        "error": row["error"],
        "createdAt": iso(row["created_at"]),
        "endedAt": iso(row["ended_at"]),
        "nextAttemptAt": iso(row["next_attempt_at"]) if pending else None,
        "payload": row["payload"],
    }


def list_deliveries(
    store: Store, tenant_id: str, webhook_id: str, before: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """The webhook's deliveries, newest first; ``(page, next cursor)``."""
    query = (
        select(D)
        .where(D.c.webhook_id == webhook_id, D.c.tenant_id == tenant_id)
        .order_by(D.c.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(D.c.id < before)
    with store.read() as conn:
        webhook_row(conn, tenant_id, webhook_id)
        rows = list(conn.execute(query).mappings())
    page = rows[:limit]
    return [delivery_json(r) for r in page], (page[-1]["id"] if len(rows) > limit else None)


def resend(store: Store, tenant_id: str, webhook_id: str, delivery_id: int) -> dict[str, Any]:
    """Send a delivery again now (the same event id; retried for another day if it fails),
    after the earlier unended ones of its order."""
    now = time.time()
    mine = and_(D.c.id == delivery_id, D.c.webhook_id == webhook_id, D.c.tenant_id == tenant_id)
    with store.write() as conn:
        webhook_row(conn, tenant_id, webhook_id)
        changed = conn.execute(
            update(D)
            .where(mine)
            .values(
                state=PENDING,
                next_attempt_at=now,
                lease_until=None,
                retry_until=now + RETRY_SECONDS,
                ended_at=None,
            )
        )
        if changed.rowcount != 1:
            raise NotFound(f"webhook {webhook_id} has no delivery {delivery_id}")
        row = conn.execute(select(D).where(mine)).mappings().one()
    store.notify_enqueued()
    return delivery_json(row)
