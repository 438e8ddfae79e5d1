"""The hot path: claiming runnable attempts, heartbeats, and applying a transition.

Every state change is a guarded update that says whether it won: a claim bumps the attempt's
``lease_version`` (the fencing token); completing or heartbeating requires the version the worker
holds, so a worker that lost its lease can never complete the attempt. Statements are Core
constructs built once (SQLAlchemy caches their compiled form); the ORM is not used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from fabflow.engine.states import AttemptState, ExecutionState
from fabflow.engine.transition import Decision
from fabflow.store.schema import attempts, events, executions, orders, status_history

_ENDED = [
    s.value for s in (ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELLED)
]

_CLAIMED_COLUMNS = (
    attempts.c.id,
    attempts.c.lease_version,
    attempts.c.claims,
    attempts.c.execution_id,
    attempts.c.tenant_id,
    attempts.c.step_id,
    attempts.c.step_type,
    attempts.c.visit,
    attempts.c.attempt,
    attempts.c.idempotency_key,
    attempts.c.error_context,
    attempts.c.created_at,
    attempts.c.run_after,
)


def _claim_statement(expired: bool) -> Any:
    if expired:
        where = and_(
            attempts.c.state == AttemptState.RUNNING.value,
            attempts.c.lease_until < bindparam("now"),
        )
    else:
        where = and_(
            attempts.c.state == AttemptState.QUEUED.value,
            attempts.c.run_after <= bindparam("now"),
        )
    # SKIP LOCKED lets many PostgreSQL workers claim side by side; SQLite renders no FOR UPDATE
    # and serialises claims with its immediate write transaction instead.
    candidates = (
        select(attempts.c.id)
        .where(where)
        .order_by(attempts.c.run_after)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(attempts)
        .where(attempts.c.id.in_(candidates))
        .values(
            state=AttemptState.RUNNING.value,
            lease_version=attempts.c.lease_version + 1,
            claims=attempts.c.claims + 1,
            lease_until=bindparam("lease_until"),
            worker_id=bindparam("worker"),
            started_at=bindparam("now"),
        )
        .returning(*_CLAIMED_COLUMNS)
    )


_CLAIM_QUEUED = _claim_statement(expired=False)
_CLAIM_EXPIRED = _claim_statement(expired=True)

_START_EXECUTIONS = (
    update(executions)
    .where(executions.c.id.in_(bindparam("ids", expanding=True)))
    .where(executions.c.state == ExecutionState.PENDING.value)
    .values(state=ExecutionState.RUNNING.value, updated_at=bindparam("now"))
)

_HEARTBEAT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempts.c.state == AttemptState.RUNNING.value)
    .values(lease_until=bindparam("lease_until"))
)

_FINISH_ATTEMPT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempts.c.state == AttemptState.RUNNING.value)
    .values(
        state=bindparam("state"),
        lease_until=None,
        ended_at=bindparam("now"),
        duration_ms=bindparam("duration_ms"),
        error_type=bindparam("error_type"),
        error_message=bindparam("error_message"),
        details=bindparam("details"),
    )
)

_SET_STATUS = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"))
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)
_SET_FILES = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"))
    .values(files=bindparam("files"), updated_at=bindparam("now"))
)
_GET_FILES = select(orders.c.files).where(orders.c.id == bindparam("order_id"))
_ADD_HISTORY = insert(status_history)
_ADD_EVENT = insert(events)
_ADD_ATTEMPT = insert(attempts)

_ADVANCE_EXECUTION = (
    update(executions)
    .where(executions.c.id == bindparam("execution_id"))
    .where(executions.c.state.not_in(_ENDED))
    .values(
        state=bindparam("state"),
        current_step=bindparam("current_step"),
        had_error=bindparam("had_error"),
        visits=executions.c.visits + bindparam("visit_increment"),
        last_error=bindparam("last_error"),
        updated_at=bindparam("now"),
        ended_at=bindparam("ended_at"),
    )
    .returning(executions.c.visits)
)


@dataclass
class Claimed:
    """An attempt this worker holds, with the lease version that proves it."""

    attempt_id: int
    lease_version: int
    claims: int
    execution_id: str
    tenant_id: str
    step_id: str
    step_type: str
    visit: int
    attempt: int
    idempotency_key: str
    error_context: dict[str, Any] | None
    created_at: float
    run_after: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def taken_over(self) -> bool:
        """Another worker held this attempt before and lost its lease."""
        return self.claims > 1


def claim(conn: Connection, worker: str, limit: int, now: float, lease_s: float) -> list[Claimed]:
    """Claim up to ``limit`` runnable attempts (expired leases first). Caller commits."""
    params = {"now": now, "limit": limit, "lease_until": now + lease_s, "worker": worker}
    rows = list(conn.execute(_CLAIM_EXPIRED, params))
    if len(rows) < limit:
        params["limit"] = limit - len(rows)
        rows += list(conn.execute(_CLAIM_QUEUED, params))
    claimed = [Claimed(*row) for row in rows]
    if claimed:
        ids = list({c.execution_id for c in claimed})
        conn.execute(_START_EXECUTIONS, {"ids": ids, "now": now})
    return claimed


def heartbeat(conn: Connection, held: Sequence[Claimed], now: float, lease_s: float) -> list[int]:
    """Extend the leases of ``held``; return the attempt ids whose lease was lost."""
    lost = []
    for c in held:
        params = {
            "attempt_id": c.attempt_id,
            "version": c.lease_version,
            "lease_until": now + lease_s,
        }
        if conn.execute(_HEARTBEAT, params).rowcount == 0:
            lost.append(c.attempt_id)
    return lost


_RELEASE = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempts.c.state == AttemptState.RUNNING.value)
    .values(
        state=AttemptState.QUEUED.value,
        lease_until=None,
        worker_id=None,
        run_after=bindparam("now"),
    )
)


def release(conn: Connection, held: Sequence[Claimed], now: float) -> None:
    """Give attempts back to the queue (a draining worker's grace period ran out)."""
    for c in held:
        conn.execute(_RELEASE, {"attempt_id": c.attempt_id, "version": c.lease_version, "now": now})


@dataclass(frozen=True)
class AttemptRecord:
    """What is recorded on the attempt row when it ends."""

    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    details: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None


def apply(
    conn: Connection,
    held: Claimed,
    order_id: str,
    decision: Decision,
    record: AttemptRecord,
    now: float,
    next_type: str = "",
) -> bool | None:
    """Apply one transition. False: the lease was lost and nothing was written. None: the
    attempt was recorded but its execution had ended meanwhile; the caller must roll back."""
    params = {
        "attempt_id": held.attempt_id,
        "version": held.lease_version,
        "state": decision.attempt_state.value,
        "now": now,
        "duration_ms": record.duration_ms,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "details": record.details or {},
    }
    if conn.execute(_FINISH_ATTEMPT, params).rowcount != 1:
        return False
    if record.files:
        _merge_files(conn, order_id, record.files, now)
    if decision.set_status is not None:
        conn.execute(_SET_STATUS, {"order_id": order_id, "status": decision.set_status, "now": now})
        conn.execute(
            _ADD_HISTORY,
            {
                "order_id": order_id,
                "status": decision.set_status,
                "step_id": held.step_id,
                "at": now,
            },
        )
    if not _advance(conn, held, decision, now, next_type):
        return None
    conn.execute(_ADD_EVENT, _event(held, order_id, decision, record, now))
    return True


def _advance(
    conn: Connection, held: Claimed, decision: Decision, now: float, next_type: str
) -> bool:
    nxt = decision.next
    ended = decision.execution_state.ended
    last_error = nxt.error_context if nxt is not None else None
    params = {
        "execution_id": held.execution_id,
        "state": decision.execution_state.value,
        "current_step": None if nxt is None else nxt.step_id,
        "had_error": decision.had_error,
        "visit_increment": 1 if nxt is not None and nxt.new_visit else 0,
        "last_error": last_error if last_error is not None else held.error_context,
        "now": now,
        "ended_at": now if ended else None,
    }
    visits = conn.execute(_ADVANCE_EXECUTION, params).scalar()
    if visits is None:  # the execution ended meanwhile (cancelled)
        return False
    if nxt is not None:
        visit = visits if nxt.new_visit else held.visit
        row = new_attempt(held.execution_id, held.tenant_id, nxt, visit, now, next_type)
        conn.execute(_ADD_ATTEMPT, row)
    return True


def new_attempt(
    execution_id: str, tenant_id: str, nxt: Any, visit: int, now: float, step_type: str = ""
) -> dict[str, Any]:
    """The row of a queued attempt of ``nxt`` (a ``transition.Next``)."""
    return {
        "execution_id": execution_id,
        "tenant_id": tenant_id,
        "step_id": nxt.step_id,
        "step_type": step_type,
        "visit": visit,
        "attempt": nxt.attempt,
        "state": AttemptState.QUEUED.value,
        "run_after": now + nxt.delay,
        "lease_version": 0,
        "claims": 0,
        "idempotency_key": f"{execution_id}.{visit}",
        "error_context": nxt.error_context,
        "created_at": now,
    }


def _merge_files(conn: Connection, order_id: str, new: list[dict[str, Any]], now: float) -> None:
    current = conn.execute(_GET_FILES, {"order_id": order_id}).scalar() or []
    by_key = {f["key"]: f for f in current}
    by_key.update({f["key"]: f for f in new})
    conn.execute(_SET_FILES, {"order_id": order_id, "files": list(by_key.values()), "now": now})


def _event(
    held: Claimed, order_id: str, decision: Decision, record: AttemptRecord, now: float
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stepDefinitionId": held.step_id,
        "attempt": held.attempt,
        "outcome": decision.attempt_state.value,
        "executionState": decision.execution_state.value,
    }
    if decision.set_status is not None:
        data["status"] = decision.set_status
    if record.error_type is not None:
        data["error"] = {"type": record.error_type, "message": record.error_message}
    if decision.next is not None:
        data["next"] = {"stepDefinitionId": decision.next.step_id, "inSeconds": decision.next.delay}
    return {
        "tenant_id": held.tenant_id,
        "order_id": order_id,
        "kind": decision.event,
        "data": data,
        "at": now,
    }


__all__ = [
    "AttemptRecord",
    "Claimed",
    "apply",
    "claim",
    "func",
    "heartbeat",
    "new_attempt",
    "release",
]
