"""The operators' actions, applied: the lifecycle decides (``fabflow.lifecycle.actions``), this
module reads what it needs and writes the decision as one guarded update that says whether it
won. Each keeps the whole history: attempts and events are appended, never rewritten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, case, insert, select, update

from fabflow.errors import Conflict, InvalidInput, NotFound, Problem
from fabflow.flows.graph import error_only
from fabflow.lifecycle import actions
from fabflow.lifecycle.states import (
    FAILED_ATTEMPT_STATES,
    AttemptState,
    ExecutionState,
    values,
)
from fabflow.store.orders.read import get_order
from fabflow.store.queue.transitions import new_attempt
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, events, executions, flow_versions, flows, orders


def cancel(store: Store, tenant_id: str, order_id: str, by: str | None = None) -> dict[str, Any]:
    """Cancel an execution that has not ended: its open attempts are cancelled, and a running
    one loses its lease (its worker's result is refused). ``by`` (who acted) goes on the
    event, as for every action here."""
    apply_cancel(store, tenant_id, order_id, by)
    return get_order(store, tenant_id, order_id)


def apply_cancel(
    store: Store, tenant_id: str, order_id: str, by: str | None, bulk: bool = False
) -> None:
    """``cancel`` without reading the order back (bulk actions act on many: ``bulk`` marks
    the event as one of them)."""
    now = time.time()
    with store.write() as conn:
        execution = _execution(conn, tenant_id, order_id)
        decision = actions.cancel(order_id, ExecutionState(execution["state"]))
        won = conn.execute(
            update(executions)
            .where(executions.c.id == execution["id"])
            .where(executions.c.state.in_(values(decision.guard)))
            .values(state=ExecutionState.CANCELLED.value, ended_at=now, updated_at=now)
        ).rowcount
        if not won:
            raise _moved_meanwhile(order_id)
        conn.execute(
            update(attempts)
            .where(attempts.c.execution_id == execution["id"])
            .where(attempts.c.state.in_(values(decision.attempts)))
            .values(state="cancelled", ended_at=now, lease_until=None)
        )
        data = {"step": execution["current_step"]}
        _add_event(conn, tenant_id, order_id, decision.event, data, now, by, bulk)


def retry_now(store: Store, tenant_id: str, order_id: str, by: str | None = None) -> dict[str, Any]:
    """Run the queued retry of a failing step now instead of after its backoff."""
    now = time.time()
    with store.write() as conn:
        execution = _execution(conn, tenant_id, order_id)
        latest = conn.execute(
            select(attempts.c.id, attempts.c.state, attempts.c.attempt, attempts.c.step_id)
            .where(attempts.c.execution_id == execution["id"])
            .order_by(attempts.c.id.desc())
            .limit(1)
        ).first()
        state = None if latest is None else AttemptState(latest.state)
        number = 0 if latest is None else latest.attempt
        decision = actions.retry_now(order_id, ExecutionState(execution["state"]), state, number)
        assert latest is not None  # the decision allowed it: there is a queued retry
        won = conn.execute(
            update(attempts)
            .where(attempts.c.id == latest.id)
            .where(attempts.c.state.in_(values(decision.guard)))
            # Never later than it was: a retry already due keeps its place in the queue.
            .values(run_after=case((attempts.c.run_after > now, now), else_=attempts.c.run_after))
        ).rowcount
        if not won:
            raise _moved_meanwhile(order_id)
        data = {"stepDefinitionId": latest.step_id, "attempt": latest.attempt}
        _add_event(conn, tenant_id, order_id, decision.event, data, now, by)
        store.notify_enqueued(conn)
    return get_order(store, tenant_id, order_id)


def retry(store: Store, tenant_id: str, order_id: str, by: str | None = None) -> dict[str, Any]:
    """Re-run the step that failed (a new visit, so a new idempotency key), then continue."""
    apply_restart(store, tenant_id, order_id, None, by)
    return get_order(store, tenant_id, order_id)


@dataclass(frozen=True)
class Fix:
    """What a rerun changes first: the flow version (a number, or "latest") and the order's
    ``data``: ``data`` as checked by the caller, ``data_patch`` the JSON merge patch (RFC
    7386) it came from. The version and the patch are recorded on the rerun's event."""

    flow_version: int | str | None = None
    data: dict[str, Any] | None = None
    data_patch: dict[str, Any] | None = None


def rerun(
    store: Store,
    tenant_id: str,
    order_id: str,
    step_id: str,
    by: str | None = None,
    fix: Fix | None = None,
) -> dict[str, Any]:
    """Run the execution again from ``step_id`` (it must be in the flow version it runs on:
    its own, or the one ``fix`` moves it to)."""
    apply_restart(store, tenant_id, order_id, step_id, by, fix)
    return get_order(store, tenant_id, order_id)


def apply_restart(
    store: Store,
    tenant_id: str,
    order_id: str,
    step_id: str | None,
    by: str | None,
    fix: Fix | None = None,
    bulk: bool = False,
) -> None:
    """Retry (``step_id`` None: the failed step) or rerun from ``step_id``, without reading
    the order back (``bulk``: as one of a bulk action's orders)."""
    now = time.time()
    with store.write() as conn:
        execution = _execution(conn, tenant_id, order_id)
        version = _version(conn, execution, fix)
        _, definition = store.flow_definition(conn, execution["flow_pk"], version)
        steps = {s["stepDefinitionId"]: s["type"] for s in definition}
        state = ExecutionState(execution["state"])
        if step_id is None:
            failed = _last_failed_step(conn, execution["id"])
            decision = actions.retry(order_id, state, failed, steps)
        else:
            decision = actions.rerun(order_id, state, step_id, steps)
        start = decision.first
        # An error handler run again (a rerun from it, or a retry after it failed) is still
        # on the error path: it gets the error, and the execution ends failed, as the first
        # time. Anything else starts clean.
        on_error_path = error_only(definition, start.step_id)
        error = _error_for(execution, start.step_id) if on_error_path else None
        start = replace(start, error_context=error)
        visits = conn.execute(
            update(executions)
            .where(executions.c.id == execution["id"])
            .where(executions.c.state.in_(values(decision.guard)))
            .values(
                state=ExecutionState.RUNNING.value,
                flow_version=version,
                current_step=start.step_id,
                had_error=on_error_path,
                last_error=error,
                visits=executions.c.visits + 1,
                ended_at=None,
                updated_at=now,
            )
            .returning(executions.c.visits)
        ).scalar()
        if visits is None:
            raise _moved_meanwhile(order_id)
        row = new_attempt(execution["id"], tenant_id, start, visits, now, decision.step_type)
        conn.execute(insert(attempts), row)
        data: dict[str, Any] = {"stepDefinitionId": start.step_id}
        if version != execution["flow_version"]:
            data["flowVersion"] = {"from": execution["flow_version"], "to": version}
        if fix is not None and fix.data is not None:
            patched = {"data": fix.data, "updated_at": now}
            conn.execute(update(orders).where(orders.c.id == order_id).values(**patched))
            data["dataPatch"] = fix.data_patch
        _add_event(conn, tenant_id, order_id, decision.event, data, now, by, bulk)
        store.notify_enqueued(conn)


def _error_for(execution: Any, step_id: str) -> dict[str, Any]:
    """The error an error handler run again by an operator gets: the execution's last one,
    or, for an order that did not fail, one saying an operator reran it."""
    last = execution["last_error"]
    if isinstance(last, dict):
        return dict(last)
    message = f"an operator reran the error handler {step_id!r}; the order had not failed"
    return {"stepDefinitionId": step_id, "type": "rerun", "message": message}


def _version(conn: Connection, execution: Any, fix: Fix | None) -> int:
    """The flow version the rerun runs on: the execution's, or the one ``fix`` names."""
    if fix is None or fix.flow_version is None:
        return int(execution["flow_version"])
    pk = execution["flow_pk"]
    if fix.flow_version == "latest":
        found = conn.execute(select(flows.c.current_version).where(flows.c.pk == pk)).scalar()
        return int(found or execution["flow_version"])
    exists = conn.execute(
        select(flow_versions.c.version).where(
            flow_versions.c.flow_pk == pk, flow_versions.c.version == fix.flow_version
        )
    ).scalar()
    if exists is None:
        message = f"the order's flow has no version {fix.flow_version}"
        raise InvalidInput(f"invalid rerun: {message}", [Problem("/flowVersion", message)])
    return int(exists)


def _last_failed_step(conn: Connection, execution_id: str) -> str | None:
    found = conn.execute(
        select(attempts.c.step_id)
        .where(
            attempts.c.execution_id == execution_id,
            attempts.c.state.in_(values(FAILED_ATTEMPT_STATES)),
        )
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def _execution(conn: Connection, tenant_id: str, order_id: str) -> Any:
    row = (
        conn.execute(
            select(executions).where(
                executions.c.order_id == order_id, executions.c.tenant_id == tenant_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no order {order_id!r}")
    return row


def _moved_meanwhile(order_id: str) -> Conflict:
    # The state read above was the one the decision allowed: only a concurrent write (a
    # worker ending the execution, another operator) can have moved it since.
    return Conflict(f"order {order_id} changed meanwhile: reload it and try again")


def _add_event(
    conn: Connection,
    tenant_id: str,
    order_id: str,
    kind: str,
    data: dict[str, Any],
    now: float,
    by: str | None = None,
    bulk: bool = False,
) -> None:
    if by:
        data = {**data, "by": by}
    if bulk:
        data = {**data, "bulk": True}
    row = {"tenant_id": tenant_id, "order_id": order_id, "kind": kind, "data": data, "at": now}
    conn.execute(insert(events), row)
    # Each action moves the order's updatedAt, as each step's transition does.
    conn.execute(update(orders).where(orders.c.id == order_id).values(updated_at=now))
