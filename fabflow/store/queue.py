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

from sqlalchemy import Connection, bindparam, func, insert, select, update

from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import Decision
from fabflow.store import db
from fabflow.store.schema import (
    ATTEMPT_QUEUED,
    ATTEMPT_RUNNING,
    attempts,
    events,
    executions,
    orders,
    status_history,
)

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


_CLAIM_VALUES = {
    "state": AttemptState.RUNNING.value,
    "lease_version": attempts.c.lease_version + 1,
    "claims": attempts.c.claims + 1,
    "lease_until": bindparam("lease_until"),
    "worker_id": bindparam("worker"),
    "started_at": bindparam("now"),
}

# SKIP LOCKED lets many PostgreSQL workers claim side by side; SQLite renders no FOR UPDATE
# and serialises claims with its immediate write transaction instead.
_CLAIM_QUEUED = (
    update(attempts)
    .where(
        attempts.c.id.in_(
            select(attempts.c.id)
            .where(
                ATTEMPT_QUEUED,
                attempts.c.run_after <= bindparam("now"),
            )
            .order_by(attempts.c.run_after)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(**_CLAIM_VALUES)
    .returning(*_CLAIMED_COLUMNS)
)

# Expired leases are found first (with who held them, for the event), then taken over.
_EXPIRED = (
    select(attempts.c.id, attempts.c.worker_id, executions.c.order_id)
    .join(executions, executions.c.id == attempts.c.execution_id)
    .where(
        ATTEMPT_RUNNING,
        attempts.c.lease_until < bindparam("now"),
    )
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=attempts)
)
_TAKE_OVER = (
    update(attempts)
    .where(attempts.c.id.in_(bindparam("ids", expanding=True)))
    .values(**_CLAIM_VALUES)
    .returning(*_CLAIMED_COLUMNS)
)

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
    .values(
        state=bindparam("state"),
        current_step=bindparam("current_step"),
        had_error=bindparam("had_error"),
        visits=bindparam("visits"),
        last_error=bindparam("last_error"),
        updated_at=bindparam("now"),
        ended_at=bindparam("ended_at"),
    )
)

# The guard of a batch on PostgreSQL: the attempts' fencing tokens and their executions'
# states, locked (FOR UPDATE) so nothing moves between this check and the writes. SQLite's
# immediate transaction already holds the database's write lock: it reads the guard only
# after the fact, when needed (see ``_finish_first``).
_GUARD = (
    select(
        attempts.c.id,
        attempts.c.lease_version,
        attempts.c.state,
        executions.c.visits,
        executions.c.state.label("execution_state"),
    )
    .join(executions, executions.c.id == attempts.c.execution_id)
    .where(attempts.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)


@dataclass(slots=True)
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


def claim(
    conn: Connection,
    worker: str,
    limit: int,
    now: float,
    lease_s: float,
    take_over: bool = True,
) -> list[Claimed]:
    """Claim up to ``limit`` runnable attempts, with ``take_over`` expired leases first.
    Caller commits."""
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "lease_until": now + lease_s,
        "worker": worker,
    }
    rows = _take_over(conn, params) if take_over and limit > 0 else []
    if len(rows) < limit:
        params["limit"] = limit - len(rows)
        rows += db.fetch(conn, _CLAIM_QUEUED, params)
    claimed = [Claimed(*row.values()) for row in rows]
    # Only an execution's very first attempt finds it pending: skip the update otherwise.
    starting = list({c.execution_id for c in claimed if c.visit == 1 and c.attempt == 1})
    if starting:
        db.fetch(conn, _START_EXECUTIONS, {"ids": starting, "now": now})
    return claimed


def _take_over(conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Claim attempts whose lease expired (their worker died or stalled), with an event each."""
    expired = db.fetch(conn, _EXPIRED, params)
    if not expired:
        return []
    rows = db.fetch(conn, _TAKE_OVER, {**params, "ids": [e["id"] for e in expired]})
    held_by = {e["id"]: e for e in expired}
    events_ = [_takeover_event(row, held_by[row["id"]], params) for row in rows]
    db.executemany(conn, _ADD_EVENT, events_)
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


@dataclass(slots=True)
class AttemptRecord:
    """What is recorded on the attempt row when it ends."""

    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    details: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class Transition:
    """One attempt's end, decided, ready to be recorded."""

    held: Claimed
    order_id: str
    decision: Decision
    record: AttemptRecord
    next_type: str = ""  # the step type of ``decision.next``


def apply(conn: Connection, transitions: Sequence[Transition], now: float) -> list[bool]:
    """Record transitions; for each, whether it won. One that lost (its lease version moved
    on, or its execution ended) writes nothing. Each statement runs once for the whole batch
    (executemany): the cost of a transition is a few rows, not a few round trips."""
    if not transitions:
        return []
    finish = [_finish_row(t, now) for t in transitions]
    if db.is_sqlite(conn):
        won, visits = _finish_first(conn, transitions, finish)
    else:
        ids = [t.held.attempt_id for t in transitions]
        current = {r["id"]: r for r in db.fetch(conn, _GUARD, {"ids": ids})}
        won = [_holds(current.get(t.held.attempt_id), t.held) for t in transitions]
        visits = {i: r["visits"] for i, r in current.items()}
        db.executemany(conn, _FINISH_ATTEMPT, [f for f, ok in zip(finish, won, strict=True) if ok])
    rows = _Rows()
    for t, ok in zip(transitions, won, strict=True):
        if ok:
            rows.add(t, visits[t.held.attempt_id], now)
            if t.record.files:
                _merge_files(conn, t.order_id, t.record.files, now)
    rows.write(conn)
    return won


def _finish_first(
    conn: Connection, transitions: Sequence[Transition], finish: list[dict[str, Any]]
) -> tuple[list[bool], dict[int, int]]:
    """SQLite: finish the attempts first; a finish that changed its row is a transition that
    won. Nothing moves meanwhile (this transaction holds the database's write lock), each
    finish is guarded by the attempt's fencing token and state, and a running attempt's
    execution cannot end under it (a cancel ends the open attempts with their execution).
    The executions' visits are the ones read when the attempts were claimed (only the running
    attempt advances its execution). The guard read is made only when some finish changed
    nothing, or a claim does not carry its visits; returns who won, and the visits."""
    all_won = db.executemany(conn, _FINISH_ATTEMPT, finish) == len(finish)
    held = {
        t.held.attempt_id: t.held.extra["visits"] for t in transitions if "visits" in t.held.extra
    }
    if all_won and len(held) == len(transitions):
        return [True] * len(finish), held
    ids = [t.held.attempt_id for t in transitions]
    current = {r["id"]: r for r in db.fetch(conn, _GUARD, {"ids": ids})}
    won, seen = [], set()
    for t, row in zip(transitions, finish, strict=True):
        found = current.get(t.held.attempt_id)
        # Ours: the token we hold, in the state we just wrote (a lost attempt is cancelled,
        # or taken over with a newer token).
        won.append(
            all_won
            or (
                t.held.attempt_id not in seen
                and found is not None
                and found["lease_version"] == t.held.lease_version
                and found["state"] == row["state"]
            )
        )
        seen.add(t.held.attempt_id)
    return won, {i: r["visits"] for i, r in current.items()}


def _holds(row: dict[str, Any] | None, held: Claimed) -> bool:
    return (
        row is not None
        and row["lease_version"] == held.lease_version
        and row["state"] == AttemptState.RUNNING.value
        and row["execution_state"] not in _ENDED
    )


def _finish_row(t: Transition, now: float) -> dict[str, Any]:
    return {
        "attempt_id": t.held.attempt_id,
        "version": t.held.lease_version,
        "state": t.decision.attempt_state.value,
        "now": now,
        "duration_ms": t.record.duration_ms,
        "error_type": t.record.error_type,
        "error_message": t.record.error_message,
        "details": t.record.details or {},
    }


class _Rows:
    """The rows a batch of transitions writes, statement by statement."""

    def __init__(self) -> None:
        self.status: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.advance: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def add(self, t: Transition, visits: int, now: float) -> None:
        held, decision, record = t.held, t.decision, t.record
        if decision.set_status is not None:
            self.status.append({"order_id": t.order_id, "status": decision.set_status, "now": now})
            self.history.append(
                {
                    "order_id": t.order_id,
                    "status": decision.set_status,
                    "step_id": held.step_id,
                    "at": now,
                }
            )
        nxt = decision.next
        if nxt is not None and nxt.new_visit:
            visits += 1
        if nxt is not None:
            visit = visits if nxt.new_visit else held.visit
            self.attempts.append(
                new_attempt(held.execution_id, held.tenant_id, nxt, visit, now, t.next_type)
            )
        last_error = nxt.error_context if nxt is not None else None
        self.advance.append(
            {
                "execution_id": held.execution_id,
                "state": decision.execution_state.value,
                "current_step": None if nxt is None else nxt.step_id,
                "had_error": decision.had_error,
                "visits": visits,
                "last_error": last_error if last_error is not None else held.error_context,
                "now": now,
                "ended_at": now if decision.execution_state.ended else None,
            }
        )
        self.events.append(_event(held, t.order_id, decision, record, now))

    def write(self, conn: Connection) -> None:
        for statement, rows in (
            (_SET_STATUS, self.status),
            (_ADD_HISTORY, self.history),
            (_ADVANCE_EXECUTION, self.advance),
            (_ADD_ATTEMPT, self.attempts),
            (_ADD_EVENT, self.events),
        ):
            if rows:
                db.executemany(conn, statement, rows)


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
