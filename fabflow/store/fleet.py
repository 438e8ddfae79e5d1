"""The fleet as operators see it: workers and what they hold, the queue's depth, tenants."""

from __future__ import annotations

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
    return [
        {
            "id": w["id"],
            "hostname": w["hostname"],
            "pid": w["pid"],
            "concurrency": w["concurrency"],
            "state": w["state"],
            "startedAt": iso(w["started_at"]),
            "heartbeatAt": iso(w["heartbeat_at"]),
            "attempts": holding.get(w["id"], []),
        }
        for w in rows
    ]


def queue_depth(store: Store) -> dict[str, int]:
    """Attempts waiting to run and running now (for /metrics and ``fabflow workers``)."""
    with store.read() as conn:
        return depth(conn)
