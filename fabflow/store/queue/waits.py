"""Waits resolved from outside the worker: a receiver's callback, an operator's confirmation
or rejection. Each is one guarded update of the waiting attempt (``WHERE state = 'waiting'``)
and the same rows a worker's transition writes, moving the execution from waiting.

A resolution is idempotent: the same one again answers as the first did; a different one once
the wait is resolved is a ``Conflict``; a wait that is unknown, timed out or cancelled is
``NotFound`` (a callback must not learn which).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from fabflow.errors import Conflict, FabflowError, NotFound, WaitNotReady
from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import AttemptState, ExecutionState, Outcome
from fabflow.lifecycle.transition import AttemptEnd, decide
from fabflow.resources import iso
from fabflow.store import fastpath
from fabflow.store.queue import statements as sql
from fabflow.store.queue.records import AttemptRecord, Claim, Transition
from fabflow.store.queue.transitions import TransitionRows
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, executions, orders
from fabflow.tokens import hash_token, visit_of


@dataclass(frozen=True)
class Resolution:
    """How a wait ends: ``success`` (with the status to set, if not the step's own) or
    ``error`` (with its type and message); ``data`` is kept on the order for later steps."""

    outcome: str  # "success" or "error"
    status: str | None = None
    message: str = ""
    data: dict[str, Any] | None = None
    error_type: str = "callback"  # "callback", or "rejected" for an operator's rejection
    by: str | None = None  # who resolved it (an operator's key prefix), None for a callback
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self, at: float) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.outcome, "at": at}
        for key, value in (("status", self.status), ("message", self.message)):
            if value:
                out[key] = value
        if self.data is not None:
            out["data"] = self.data
        if self.by is not None:
            out["by"] = self.by
        return out | self.extra

    def same_as(self, stored: dict[str, Any]) -> bool:
        """Whether ``stored`` (a resolution already recorded) says the same."""
        mine = self.as_json(0.0)
        return {k: v for k, v in stored.items() if k not in ("at", "by")} == {
            k: v for k, v in mine.items() if k not in ("at", "by")
        }


_BY_TOKEN = select(
    attempts,
    executions.c.order_id,
    executions.c.flow_pk,
    executions.c.flow_version,
    executions.c.had_error.label("execution_had_error"),
    executions.c.visits.label("execution_visits"),
    executions.c.outputs.label("execution_outputs"),
).join(executions, executions.c.id == attempts.c.execution_id)
_WAIT_OF_TOKEN = _BY_TOKEN.where(attempts.c.callback_token == bindparam("token_hash"))


_UNKNOWN = "no wait has this callback token (unknown, used or expired)"


def resolve_callbacks(
    store: Store, items: Sequence[tuple[str, Resolution]], secret: str
) -> list[dict[str, Any] | FabflowError]:
    """Resolve the waits whose callback tokens are given, in one transaction (the API's group
    commit). Per item: ``{"orderId", "state"}``, or the error it met: ``NotFound`` (unknown,
    used or expired token), ``Conflict`` (resolved already with another outcome), or
    ``WaitNotReady`` (a valid token, made with ``secret``, whose wait is not recorded yet:
    its attempt is still running, or queued again after its worker died). An item refused
    writes nothing; the others are unaffected."""
    now = time.time()
    out: list[dict[str, Any] | FabflowError] = []
    rows = TransitionRows(from_state=ExecutionState.WAITING)
    # The same callback twice in one batch: the second answers as the first (whose rows are
    # not written yet), or is refused if it says otherwise.
    seen: dict[int, tuple[Resolution, dict[str, Any]]] = {}
    with store.write() as conn:
        for token, resolution in items:
            try:
                found = fastpath.fetch(conn, _WAIT_OF_TOKEN, {"token_hash": hash_token(token)})
                if not found:
                    _not_recorded_yet(conn, token, secret)
                    raise NotFound(_UNKNOWN)
                first = seen.get(found[0]["id"])
                if first is not None:
                    out.append(_same_again(first, resolution))
                    continue
                answer = _resolve(store, conn, found[0], resolution, now, rows)
                seen[found[0]["id"]] = (resolution, answer)
                out.append(answer)
            except (NotFound, Conflict) as exc:
                out.append(exc)
        rows.write(conn)
        if rows.attempts:
            store.notify_enqueued(conn)
    return out


def _same_again(first: tuple[Resolution, dict[str, Any]], resolution: Resolution) -> dict[str, Any]:
    earlier, answer = first
    if not resolution.same_as(earlier.as_json(0.0)):
        raise Conflict(f"this wait was already resolved as {earlier.outcome}")
    return answer


def _not_recorded_yet(conn: Connection, token: str, secret: str) -> None:
    """Raise ``WaitNotReady`` for a valid token whose attempt has not parked yet, else
    ``NotFound``. An attempt found waiting counts as not ready too: on PostgreSQL each query
    sees what was committed when it ran, so the wait may have been recorded between the
    token's lookup and this one (the callback's next try finds it)."""
    visit_key = visit_of(secret, token) if secret else None
    execution_id, _, visit = (visit_key or "").rpartition(".")
    if not execution_id or not visit.isdigit():
        raise NotFound(_UNKNOWN)
    state = conn.execute(
        select(attempts.c.state)
        .where(attempts.c.execution_id == execution_id, attempts.c.visit == int(visit))
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).scalar()
    if state in (AttemptState.QUEUED.value, AttemptState.RUNNING.value, AttemptState.WAITING.value):
        raise WaitNotReady("the wait this callback ends is not recorded yet: send it again")
    raise NotFound(_UNKNOWN)


def resolve_confirmation(
    store: Store, tenant_id: str, order_id: str, resolution: Resolution
) -> dict[str, Any]:
    """Confirm (success) or reject (error) the order's wait for a person."""
    query = (
        _BY_TOKEN.where(executions.c.order_id == order_id, executions.c.tenant_id == tenant_id)
        .where(attempts.c.wait_kind == "confirmation")
        .order_by(attempts.c.id.desc())
        .limit(1)
    )
    with store.write() as conn:
        row = conn.execute(query).mappings().first()
        if row is None or row["state"] != AttemptState.WAITING.value:
            raise Conflict(f"order {order_id} is not waiting for a confirmation")
        rows = TransitionRows(from_state=ExecutionState.WAITING)
        answer = _resolve(store, conn, dict(row), resolution, time.time(), rows)
        rows.write(conn)
        if rows.attempts:
            store.notify_enqueued(conn)
        return answer


def _resolve(
    store: Store,
    conn: Connection,
    row: dict[str, Any],
    resolution: Resolution,
    now: float,
    rows: TransitionRows,
) -> dict[str, Any]:
    """Resolve one wait: its guarded update now, the rest of its transition into ``rows``
    (written once for a whole batch)."""
    if row["state"] != AttemptState.WAITING.value or (row["wait_until"] or 0) <= now:
        return _already(conn, row, resolution)
    flow = store.flow(conn, row["flow_pk"], row["flow_version"])
    step = flow.step(row["step_id"])
    decision = decide(
        step,
        _end(row["attempt"], resolution),
        policy=RetryPolicy(max_attempts=1),
        had_error=bool(row["execution_had_error"]),
        error_context=row["error_context"],
    )
    failed = resolution.outcome != "success"
    change = {
        "attempt_id": row["id"],
        "state": decision.attempt_state.value,
        "now": now,
        "error_type": resolution.error_type if failed else None,
        "error_message": resolution.message if failed else None,
        "resolution": resolution.as_json(now),
    }
    if not fastpath.executemany(conn, sql.RESOLVE_WAIT, [change]):
        return _already(conn, row, resolution)  # resolved or cancelled meanwhile
    next_type = ""
    if decision.next is not None and decision.next.step_id in flow:
        next_type = flow.step(decision.next.step_id).type
    record = AttemptRecord(duration_ms=0.0)
    outputs = _outputs(row, resolution, now)
    transition = Transition(
        _claim(row), row["order_id"], decision, record, next_type, outputs=outputs
    )
    rows.add(transition, row["execution_visits"], now)
    rows.events[-1]["data"]["resolvedBy"] = resolution.by or resolution.error_type
    if resolution.data is not None:
        _keep_data(conn, row["order_id"], row["step_id"], resolution.data, now)
    return {"orderId": row["order_id"], "state": decision.execution_state.value}


def _outputs(row: dict[str, Any], resolution: Resolution, now: float) -> dict[str, Any] | None:
    """The execution's outputs with what this wait's end adds to its step's: a callback's
    ``data`` as ``callback``, a person's answer as ``confirmation``."""
    if row["wait_kind"] == "confirmation":
        outcome = "confirmed" if resolution.outcome == "success" else "rejected"
        added: dict[str, Any] = {
            "confirmation": {
                "outcome": outcome,
                "by": resolution.by,
                "comment": resolution.message,
                "at": iso(now),
            }
        }
    elif resolution.data is not None:
        added = {"callback": resolution.data}
    else:
        return None
    current = dict(row["execution_outputs"] or {})
    step_id = row["step_id"]
    current[step_id] = {**(current.get(step_id) or {}), **added}
    return current


def _already(conn: Connection, row: dict[str, Any], resolution: Resolution) -> dict[str, Any]:
    """The answer for a wait that is no longer waiting: the same resolution again is fine."""
    current = conn.execute(select(attempts.c.resolution).where(attempts.c.id == row["id"])).scalar()
    if current is None:
        raise NotFound("no wait has this callback token (unknown, used or expired)")
    if not resolution.same_as(current):
        raise Conflict(f"this wait was already resolved as {current['outcome']}")
    state = conn.execute(
        select(executions.c.state).where(executions.c.id == row["execution_id"])
    ).scalar()
    return {"orderId": row["order_id"], "state": state}


def _end(attempt: int, resolution: Resolution) -> AttemptEnd:
    if resolution.outcome == "success":
        return AttemptEnd(Outcome.SUCCESS, attempt, waited=True, status=resolution.status)
    message = resolution.message or f"the wait ended in error ({resolution.error_type})"
    return AttemptEnd(Outcome.ERROR, attempt, resolution.error_type, message, waited=True)


def _claim(row: dict[str, Any]) -> Claim:
    return Claim(
        row["id"],
        row["lease_version"],
        row["claims"],
        row["execution_id"],
        row["tenant_id"],
        row["step_id"],
        row["step_type"],
        row["visit"],
        row["attempt"],
        row["idempotency_key"],
        row["error_context"],
        row["created_at"],
        row["run_after"],
        row["wait_kind"],
    )


def _keep_data(
    conn: Connection, order_id: str, step_id: str, data: dict[str, Any], now: float
) -> None:
    current = conn.execute(select(orders.c.step_data).where(orders.c.id == order_id)).scalar()
    merged = {**(current or {}), step_id: data}
    conn.execute(
        update(orders).where(orders.c.id == order_id).values(step_data=merged, updated_at=now)
    )
