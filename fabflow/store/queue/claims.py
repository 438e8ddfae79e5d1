"""Claiming runnable attempts, renewing and giving back their leases, and the queue's depth.

Each function runs inside the caller's transaction (the caller commits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from fabflow.lifecycle.states import AttemptState
from fabflow.store import fastpath
from fabflow.store.queue import statements as sql
from fabflow.store.queue.records import Claim
from fabflow.store.schema import ATTEMPT_QUEUED, ATTEMPT_RUNNING, attempts


def claim(
    conn: Connection,
    worker: str,
    limit: int,
    now: float,
    lease_s: float,
    take_over: bool = True,
    expire_waits: bool = True,
    quotas: Mapping[str, int] | None = None,
) -> list[Claim]:
    """Claim runnable attempts: with ``take_over`` expired leases first, with ``expire_waits``
    waits past their deadline next (to be timed out), then queued attempts: up to
    ``quotas[tenant]`` of each tenant's (a fair claim, in the quotas' order), then up to
    ``limit`` more of anyone's, oldest first. Caller commits."""
    budget = limit + (sum(quotas.values()) if quotas else 0)
    params: dict[str, Any] = {
        "now": now,
        "limit": budget,
        "lease_until": now + lease_s,
        "worker": worker,
    }
    rows = _take_over(conn, params) if take_over and budget > 0 else []
    if expire_waits and len(rows) < budget:
        rows += _expired_waits(conn, {**params, "limit": budget - len(rows)})
    for tenant, wanted in (quotas or {}).items():
        wanted = min(wanted, budget - len(rows))
        if wanted > 0:
            tenant_params = {**params, "tenant": tenant, "limit": wanted}
            rows += fastpath.fetch(conn, sql.CLAIM_TENANT, tenant_params)
    rest = min(limit, budget - len(rows))
    if rest > 0:
        params["limit"] = rest
        rows += fastpath.fetch(conn, sql.CLAIM_QUEUED, params)
    claimed = [Claim(*row.values()) for row in rows]
    # Only an execution's very first attempt finds it pending: skip the update otherwise.
    starting = list({c.execution_id for c in claimed if c.visit == 1 and c.attempt == 1})
    if starting:
        fastpath.fetch(conn, sql.START_EXECUTIONS, {"ids": starting, "now": now})
    return claimed


def runnable(conn: Connection, now: float) -> dict[str, int]:
    """The attempts runnable now, by tenant (reads every queued attempt: not on each cycle)."""
    return {
        row["tenant_id"]: row["n"]
        for row in fastpath.fetch(conn, sql.RUNNABLE_BY_TENANT, {"now": now})
    }


def _expired_waits(conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Claim waits past their deadline (durable timers: whoever runs next finds them), and
    move their executions from waiting back to running."""
    expired = fastpath.fetch(conn, sql.EXPIRED_WAITS, params)
    if not expired:
        return []
    rows = fastpath.fetch(
        conn, sql.TAKE_EXPIRED_WAITS, {**params, "ids": [e["id"] for e in expired]}
    )
    woken = list({r["execution_id"] for r in rows})
    fastpath.fetch(conn, sql.WAKE_EXECUTIONS, {"ids": woken, "now": params["now"]})
    return rows


def _take_over(conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Claim attempts whose lease expired (their worker died or stalled), with an event each."""
    expired = fastpath.fetch(conn, sql.EXPIRED, params)
    if not expired:
        return []
    rows = fastpath.fetch(conn, sql.TAKE_OVER, {**params, "ids": [e["id"] for e in expired]})
    held_by = {e["id"]: e for e in expired}
    events_ = [_takeover_event(row, held_by[row["id"]], params) for row in rows]
    fastpath.executemany(conn, sql.ADD_EVENT, events_)
    return rows


def _takeover_event(
    row: dict[str, Any], expired: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    data = {
        "stepDefinitionId": row["step_id"],
        "attempt": row["attempt"],
        "previousWorker": expired["worker_id"],
        "worker": params["worker"],
        "claims": row["claims"],
    }
    return {
        "tenant_id": row["tenant_id"],
        "order_id": expired["order_id"],
        "kind": "attempt_taken_over",
        "data": data,
        "at": params["now"],
    }


def depth(conn: Connection, tenant_id: str | None = None) -> dict[str, int]:
    """Attempts queued and running now (of one tenant, or all). Each count reads its state's
    partial index: the open attempts only, never the history."""
    counts = []
    for open_ in (ATTEMPT_QUEUED, ATTEMPT_RUNNING):
        count = select(func.count()).where(open_)
        if tenant_id is not None:
            count = count.where(attempts.c.tenant_id == tenant_id)
        counts.append(count.scalar_subquery())
    queued, running = conn.execute(select(*counts)).one()
    return {AttemptState.QUEUED.value: int(queued), AttemptState.RUNNING.value: int(running)}


def heartbeat(conn: Connection, held: Sequence[Claim], now: float, lease_s: float) -> list[int]:
    """Extend the leases of ``held``; return the attempt ids whose lease was lost."""
    lost = []
    for c in held:
        params = {
            "attempt_id": c.attempt_id,
            "version": c.lease_version,
            "lease_until": now + lease_s,
        }
        if conn.execute(sql.HEARTBEAT, params).rowcount == 0:
            lost.append(c.attempt_id)
    return lost


def release(conn: Connection, held: Sequence[Claim], now: float) -> None:
    """Give attempts back to the queue (a draining worker's grace period ran out)."""
    for c in held:
        conn.execute(
            sql.RELEASE, {"attempt_id": c.attempt_id, "version": c.lease_version, "now": now}
        )
