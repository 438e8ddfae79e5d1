"""Recording the end of attempts: a batch of decided transitions in one transaction.

Each transition is applied only if it still holds its lease (the fencing token it was
claimed with, and its attempt still running); one that lost writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from fabflow.flows.model import CHOICE
from fabflow.lifecycle.route import Hop, Route
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import Decision, NextAttempt
from fabflow.store import fastpath
from fabflow.store.queue import statements as sql
from fabflow.store.queue.records import AttemptRecord, Claim, Transition


def apply(conn: Connection, transitions: Sequence[Transition], now: float) -> list[bool]:
    """Record transitions; for each, whether it won. One that lost (its lease version moved
    on, or its execution ended) writes nothing. Each statement runs once for the whole batch
    (executemany): the cost of a transition is a few rows, not a few round trips."""
    if not transitions:
        return []
    finish = [_finish_row(t, now) for t in transitions]
    if fastpath.is_sqlite(conn):
        won, visits = _finish_first(conn, transitions, finish)
    else:
        ids = [t.held.attempt_id for t in transitions]
        current = {r["id"]: r for r in fastpath.fetch(conn, sql.GUARD, {"ids": ids})}
        won = [_holds(current.get(t.held.attempt_id), t.held) for t in transitions]
        visits = {i: r["visits"] for i, r in current.items()}
        _end_attempts(
            conn, [(t, f) for t, f, ok in zip(transitions, finish, won, strict=True) if ok]
        )
    rows = TransitionRows()
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
    all_won = _end_attempts(conn, list(zip(transitions, finish, strict=True))) == len(finish)
    held = {t.held.attempt_id: t.visits for t in transitions if t.visits is not None}
    if all_won and len(held) == len(transitions):
        return [True] * len(finish), held
    ids = [t.held.attempt_id for t in transitions]
    current = {r["id"]: r for r in fastpath.fetch(conn, sql.GUARD, {"ids": ids})}
    won, seen = [], set()
    for t in transitions:
        found = current.get(t.held.attempt_id)
        # Ours: the token we hold, in the state we just wrote (a lost attempt is cancelled,
        # or taken over with a newer token).
        won.append(
            all_won
            or (
                t.held.attempt_id not in seen
                and found is not None
                and found["lease_version"] == t.held.lease_version
                and found["state"] == t.decision.attempt_state.value
            )
        )
        seen.add(t.held.attempt_id)
    return won, {i: r["visits"] for i, r in current.items()}


def _end_attempts(conn: Connection, ending: list[tuple[Transition, dict[str, Any]]]) -> int:
    """Finish the attempts that ended, park those that wait; the rows changed in all."""
    finished = [row for t, row in ending if t.record.wait is None]
    parked = [_park_row(t, row) for t, row in ending if t.record.wait is not None]
    changed = fastpath.executemany(conn, sql.FINISH_ATTEMPT, finished) if finished else 0
    if parked:
        changed += fastpath.executemany(conn, sql.PARK_ATTEMPT, parked)
    return changed


def _park_row(t: Transition, finish: dict[str, Any]) -> dict[str, Any]:
    wait = t.record.wait
    assert wait is not None
    return {
        "attempt_id": finish["attempt_id"],
        "version": finish["version"],
        "duration_ms": finish["duration_ms"],
        "details": finish["details"],
        "wait_until": wait.until,
        "wait_kind": wait.kind,
        "callback_token": wait.token_hash,
    }


def _holds(row: dict[str, Any] | None, held: Claim) -> bool:
    return (
        row is not None
        and row["lease_version"] == held.lease_version
        and row["state"] == AttemptState.RUNNING.value
        and not ExecutionState(row["execution_state"]).ended
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


class TransitionRows:
    """The rows a batch of transitions writes, statement by statement. ``from_state`` is the
    state the executions move from: running (a worker's transitions) or waiting (a wait
    resolved by a callback or a person)."""

    def __init__(self, from_state: ExecutionState = ExecutionState.RUNNING) -> None:
        self.from_state = from_state.value
        self.status: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.advance: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.routed: list[dict[str, Any]] = []  # the choices evaluated: ended attempts

    def _status(self, order_id: str, status: str | None, step_id: str, now: float) -> None:
        self.status.append({"order_id": order_id, "status": status, "now": now})  # updatedAt
        if status is not None:
            self.history.append(
                {"order_id": order_id, "status": status, "step_id": step_id, "at": now}
            )

    def add(self, t: Transition, visits: int, now: float) -> None:
        held, decision, record = t.held, t.decision, t.record
        self._status(t.order_id, decision.set_status, held.step_id, now)
        self.events.append(_event(held, t.order_id, decision, record, now))
        for hop in t.hops or ():
            visits += 1  # a choice is a visit of its own
            if hop.decision.set_status is not None:  # most choices set none
                self._status(t.order_id, hop.decision.set_status, hop.step_id, now)
            details = None if hop.route is None else route_details(hop.route)
            self.routed.append(_routed_row(held, hop, details, visits, now))
            self.events.append(_hop_event(held, t.order_id, hop, details, now))
        decision = t.final
        then = decision.next
        if then is not None and then.new_visit:
            visits += 1
        if then is not None:
            visit = visits if then.new_visit else held.visit
            self.attempts.append(
                new_attempt(held.execution_id, held.tenant_id, then, visit, now, t.next_type)
            )
        last_error = then.error_context if then is not None else None
        waits = decision.execution_state is ExecutionState.WAITING
        self.advance.append(
            {
                "execution_id": held.execution_id,
                "from_state": self.from_state,
                "state": decision.execution_state.value,
                "current_step": held.step_id if waits else None if then is None else then.step_id,
                "had_error": decision.had_error,
                "visits": visits,
                "last_error": last_error if last_error is not None else held.error_context,
                "now": now,
                "ended_at": now if decision.execution_state.ended else None,
                "outputs": t.outputs,
            }
        )

    def write(self, conn: Connection) -> None:
        for statement, rows in (
            (sql.SET_STATUS, self.status),
            (sql.ADD_HISTORY, self.history),
            (sql.ADVANCE_EXECUTION, self.advance),
            (sql.ADD_ATTEMPT, self.routed),
            (sql.ADD_ATTEMPT, self.attempts),
            (sql.ADD_EVENT, self.events),
        ):
            if rows:
                fastpath.executemany(conn, statement, rows)


def new_attempt(
    execution_id: str,
    tenant_id: str,
    then: NextAttempt,
    visit: int,
    now: float,
    step_type: str = "",
) -> dict[str, Any]:
    """The row of the queued attempt ``then``, of the execution's visit number ``visit``."""
    return {
        "execution_id": execution_id,
        "tenant_id": tenant_id,
        "step_id": then.step_id,
        "step_type": step_type,
        "visit": visit,
        "attempt": then.attempt,
        "state": AttemptState.QUEUED.value,
        "run_after": now + then.delay,
        "lease_version": 0,
        "claims": 0,
        "idempotency_key": f"{execution_id}.{visit}",
        "error_context": then.error_context,
        "created_at": now,
    }


def _routed_row(
    held: Claim, hop: Hop, details: dict[str, Any] | None, visit: int, now: float
) -> dict[str, Any]:
    """The attempt row of a choice evaluated in a transition: ended as it started."""
    failed = hop.route is None
    return {
        "execution_id": held.execution_id,
        "tenant_id": held.tenant_id,
        "step_id": hop.step_id,
        "step_type": CHOICE,
        "visit": visit,
        "attempt": 1,
        "state": hop.decision.attempt_state.value,
        "run_after": now,
        "started_at": now,
        "ended_at": now,
        "duration_ms": hop.duration_ms,
        "lease_version": 0,
        "claims": 0,
        "idempotency_key": f"{held.execution_id}.{visit}",
        "error_context": hop.error_context,
        "error_type": "expression" if failed else None,
        "error_message": hop.error,
        "details": {} if details is None else details,
        "created_at": now,
    }


def route_details(route: Route) -> dict[str, Any]:
    """How a choice routed, as its attempt's details and event say it."""
    return {"rule": route.rule, "when": route.when, "next": route.next}


def _hop_event(
    held: Claim, order_id: str, hop: Hop, details: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    decision = hop.decision
    data: dict[str, Any] = {
        "stepDefinitionId": hop.step_id,
        "attempt": 1,
        "outcome": decision.attempt_state.value,
        "executionState": decision.execution_state.value,
    }
    if details is not None:
        data["route"] = details
    if decision.set_status is not None:
        data["status"] = decision.set_status
    if hop.error is not None:
        data["error"] = {"type": "expression", "message": hop.error}
    if decision.next is not None:
        data["next"] = {"stepDefinitionId": decision.next.step_id, "inSeconds": 0}
    return {
        "tenant_id": held.tenant_id,
        "order_id": order_id,
        "kind": decision.event,
        "data": data,
        "at": now,
    }


def _merge_files(conn: Connection, order_id: str, new: list[dict[str, Any]], now: float) -> None:
    current = conn.execute(sql.GET_FILES, {"order_id": order_id}).scalar() or []
    by_key = {f["key"]: f for f in current}
    by_key.update({f["key"]: f for f in new})
    conn.execute(sql.SET_FILES, {"order_id": order_id, "files": list(by_key.values()), "now": now})


def _event(
    held: Claim, order_id: str, decision: Decision, record: AttemptRecord, now: float
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
