"""The fleet as operators see it: workers and what they hold, the queue's depth, tenants."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from fabflow.errors import NotFound
from fabflow.resources import iso
from fabflow.store.queue.claims import depth
from fabflow.store.repository import Store
from fabflow.store.schema import ATTEMPT_RUNNING, attempts, executions, tenants, workers


def find_tenant(store: Store, name: str) -> str:
    """The id of the tenant called ``name``; NotFound otherwise (never creates one)."""
    with store.read() as conn:
        found = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no tenant {name!r}")
    return str(found)


def list_workers(store: Store) -> list[dict[str, Any]]:
    """Every worker row, newest first, with the attempts it holds now (state running)."""
    held = (
        select(attempts.c.worker_id, attempts.c.id, attempts.c.step_id, executions.c.order_id)
        .join(executions, executions.c.id == attempts.c.execution_id)
        .where(ATTEMPT_RUNNING)
        .order_by(attempts.c.id)
    )
    with store.read() as conn:
        rows = conn.execute(select(workers).order_by(workers.c.started_at.desc())).mappings().all()
        holding: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(held):
            item = {"attemptId": r.id, "stepDefinitionId": r.step_id, "orderId": r.order_id}
            holding.setdefault(str(r.worker_id), []).append(item)
    now, lease = time.time(), store.settings.lease_seconds
    return [
        {
            "id": w["id"],
            "hostname": w["hostname"],
            "pid": w["pid"],
            "concurrency": w["concurrency"],
            "state": _state(w["state"], now - w["heartbeat_at"], lease),
            "startedAt": iso(w["started_at"]),
            "heartbeatAt": iso(w["heartbeat_at"]),
            "lastSeenSecondsAgo": round(max(0.0, now - w["heartbeat_at"]), 1),
            "attempts": holding.get(w["id"], []),
        }
        for w in rows
    ]


def _state(recorded: str, silent_s: float, lease_s: float) -> str:
    """``lost`` for a worker that says it runs but has not been heard of for a lease: it was
    killed or cut off, and its attempts go to other workers when their leases run out."""
    if recorded not in ("stopped", "stopping") and silent_s > lease_s:
        return "lost"
    return recorded


def queue_depth(store: Store) -> dict[str, int]:
    """Attempts waiting to run and running now (for /metrics and ``fabflow workers``)."""
    with store.read() as conn:
        return depth(conn)
