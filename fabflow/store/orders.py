"""Orders: intake, the order resource, listing, events, and the operators' actions.

Functions take the ``Store`` so that each runs in its own transaction; each action is one
guarded write that keeps the whole history (attempts and events are appended, never rewritten).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fabflow.errors import Conflict, NotFound
from fabflow.ids import new_id
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import Next
from fabflow.resources import (
    ATTEMPT_COLUMNS,
    HISTORY_COLUMNS,
    ORDER_COLUMNS,
    RESOURCE_EXECUTION_COLUMNS,
    order_resource,
)
from fabflow.store import db, queue
from fabflow.store.queue import new_attempt
from fabflow.store.repository import Store
from fabflow.store.schema import (
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
_OPEN_ATTEMPTS = [AttemptState.QUEUED.value, AttemptState.RUNNING.value]


_INSERT_ORDER = insert(orders)
_INSERT_EXECUTION = insert(executions)
_INSERT_ATTEMPT = insert(attempts)
_INSERT_EVENT = insert(events)


def create_order(
    store: Store,
    tenant_id: str,
    order: dict[str, Any],
    flow_id: str,
) -> tuple[dict[str, Any], bool]:
    """Accept a validated order: the order, its execution and its first attempt, in one
    transaction. Returns ``(resource, created)``; an ``externalId`` the tenant already used
    returns the existing order with ``created`` False."""
    external_id = order.get("externalId")
    if external_id:
        existing = _find_external(store, tenant_id, external_id)
        if existing is not None:
            return get_order(store, tenant_id, existing), False
    try:
        order_id = _insert_order(store, tenant_id, order, flow_id)
    except IntegrityError:  # a concurrent request with the same externalId won the race
        existing = _find_external(store, tenant_id, external_id) if external_id else None
        if existing is None:
            raise
        return get_order(store, tenant_id, existing), False
    return get_order(store, tenant_id, order_id), True


def _insert_order(store: Store, tenant_id: str, order: dict[str, Any], flow_id: str) -> str:
    rows: dict[str, list[dict[str, Any]]] = {"o": [], "e": [], "a": [], "v": []}
    with store.write() as conn:
        flow = store.current_flow(conn, tenant_id, flow_id)
        order_id = _batch_rows(store, conn, rows, tenant_id, order, flow_id, flow, time.time())
        _write_rows(conn, rows)
        store.notify_enqueued(conn)
    return order_id


def _search_text(order_id: str, order: dict[str, Any]) -> str:
    customer = order.get("customer") or {}
    parts = [
        order_id,
        order.get("externalId") or "",
        customer.get("name") or "",
        customer.get("email") or "",
    ]
    return " ".join(parts).lower()


def _find_external(store: Store, tenant_id: str, external_id: str) -> str | None:
    with store.read() as conn:
        found = conn.execute(
            select(orders.c.id).where(
                orders.c.tenant_id == tenant_id, orders.c.external_id == external_id
            )
        ).scalar()
    return None if found is None else str(found)


def _event(
    conn: Connection, tenant_id: str, order_id: str, kind: str, data: dict[str, Any], now: float
) -> None:
    row = {"tenant_id": tenant_id, "order_id": order_id, "kind": kind, "data": data, "at": now}
    conn.execute(_INSERT_EVENT, row)


# -- reading ------------------------------------------------------------------------------


def get_order(store: Store, tenant_id: str, order_id: str) -> dict[str, Any]:
    """The order resource; NotFound for an unknown id or another tenant's order."""
    with store.read() as conn:
        resources = load_resources(store, conn, [order_id], tenant_id)
    if not resources:
        raise NotFound(f"no order {order_id!r}")
    return resources[0]


# The columns the order resource shows, and no more: the worker reads them for every step it
# runs, and each column read costs (SQLite builds a Python object for every one).
_IDS: Any = bindparam("ids", expanding=True)
_ORDERS_BY_ID = select(*(orders.c[k] for k in ORDER_COLUMNS)).where(orders.c.id.in_(_IDS))
_ORDERS_BY_ID_FOR_TENANT = _ORDERS_BY_ID.where(orders.c.tenant_id == bindparam("tenant_id"))
EXECUTION_COLUMNS = (
    *(executions.c[k] for k in RESOURCE_EXECUTION_COLUMNS),
    executions.c.order_id,
    executions.c.flow_pk,
    executions.c.had_error,  # the worker's, for the transition
    executions.c.visits,  # the same
)
_EXECUTIONS_BY_ORDER = select(*EXECUTION_COLUMNS).where(executions.c.order_id.in_(_IDS))
_ATTEMPTS_BY_EXECUTION = (
    select(*(attempts.c[k] for k in ATTEMPT_COLUMNS), attempts.c.execution_id)
    .where(attempts.c.execution_id.in_(_IDS))
    # By execution first, as the index is: no sort (each execution's attempts in order).
    .order_by(attempts.c.execution_id, attempts.c.id)
)
_HISTORY_BY_ORDER = (
    select(*(status_history.c[k] for k in HISTORY_COLUMNS), status_history.c.order_id)
    .where(status_history.c.order_id.in_(_IDS))
    .order_by(status_history.c.order_id, status_history.c.id)  # the index's order: no sort
)


def load_resources(
    store: Store,
    conn: Connection,
    order_ids: Sequence[str],
    tenant_id: str | None = None,
    stored_files: dict[str, list[dict[str, Any]]] | None = None,
    executions: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Order resources for ``order_ids`` (in that order), with four queries whatever their count.

    ``stored_files``, when given, receives each order's file records as stored (with their
    store keys, which the resource does not show). ``executions``, when given, holds the
    orders' execution rows by order id, already read in this transaction."""
    if tenant_id is None:
        found = db.fetch(conn, _ORDERS_BY_ID, {"ids": order_ids})
    else:
        found = db.fetch(conn, _ORDERS_BY_ID_FOR_TENANT, {"ids": order_ids, "tenant_id": tenant_id})
    order_rows = {r["id"]: r for r in found}
    if stored_files is not None:
        stored_files.update({oid: list(r["files"] or []) for oid, r in order_rows.items()})
    if not order_rows:
        return []
    ids = {"ids": list(order_rows)}
    exec_rows = executions
    if exec_rows is None:
        exec_rows = {r["order_id"]: r for r in db.fetch(conn, _EXECUTIONS_BY_ORDER, ids)}
    by_exec: dict[str, list[Any]] = {}
    exec_ids = {"ids": [exec_rows[oid]["id"] for oid in order_rows]}
    for a in db.fetch(conn, _ATTEMPTS_BY_EXECUTION, exec_ids):
        by_exec.setdefault(a["execution_id"], []).append(a)
    history: dict[str, list[Any]] = {}
    for h in db.fetch(conn, _HISTORY_BY_ORDER, ids):
        history.setdefault(h["order_id"], []).append(h)
    out = []
    for oid in order_ids:
        if oid not in order_rows:
            continue
        ex = exec_rows[oid]
        flow_meta, _ = store.flow_definition(conn, ex["flow_pk"], ex["flow_version"])
        out.append(
            order_resource(
                order_rows[oid],
                ex,
                by_exec.get(ex["id"], []),
                history.get(oid, []),
                flow_meta,
                store.settings.public_url,
            )
        )
    return out


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    state: str | None = None
    flow_id: str | None = None
    q: str | None = None
    created_after: float | None = None
    created_before: float | None = None


def list_orders(
    store: Store, tenant_id: str, flt: OrderFilter, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns ``(orders, next cursor)``. The cursor is the last id seen."""
    from fabflow.store.schema import flows

    query = (
        select(orders.c.id)
        .join(executions, executions.c.order_id == orders.c.id)
        .where(orders.c.tenant_id == tenant_id)
        .order_by(orders.c.id.desc())
        .limit(limit + 1)
    )
    if flt.status is not None:
        query = query.where(orders.c.status == flt.status)
    if flt.state is not None:
        query = query.where(executions.c.state == flt.state)
    if flt.flow_id is not None:
        query = query.join(flows, flows.c.pk == orders.c.flow_pk).where(
            flows.c.flow_id == flt.flow_id
        )
    if flt.q:
        query = query.where(orders.c.search.contains(flt.q.lower(), autoescape=True))
    if flt.created_after is not None:
        query = query.where(orders.c.created_at >= flt.created_after)
    if flt.created_before is not None:
        query = query.where(orders.c.created_at < flt.created_before)
    if cursor:
        query = query.where(orders.c.id < cursor)
    with store.read() as conn:
        ids = [r[0] for r in conn.execute(query)]
        page = ids[:limit]
        resources = load_resources(store, conn, page, tenant_id)
    return resources, (page[-1] if len(ids) > limit else None)


def state_counts(store: Store, tenant_id: str) -> dict[str, int]:
    query = (
        select(executions.c.state, func.count())
        .where(executions.c.tenant_id == tenant_id)
        .group_by(executions.c.state)
    )
    with store.read() as conn:
        counts = {s.value: 0 for s in ExecutionState}
        counts.update({state: n for state, n in conn.execute(query).all()})
    return counts


def order_events(
    store: Store, tenant_id: str, order_id: str, after: int = 0
) -> list[dict[str, Any]]:
    get_order_row(store, tenant_id, order_id)
    query = (
        select(events)
        .where(events.c.order_id == order_id, events.c.tenant_id == tenant_id, events.c.id > after)
        .order_by(events.c.id)
    )
    from fabflow.resources import iso

    with store.read() as conn:
        return [
            {"id": r["id"], "kind": r["kind"], "data": r["data"], "at": iso(r["at"])}
            for r in conn.execute(query).mappings()
        ]


def get_order_row(store: Store, tenant_id: str, order_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = (
            conn.execute(
                select(orders).where(orders.c.id == order_id, orders.c.tenant_id == tenant_id)
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no order {order_id!r}")
    return dict(row)


# -- operators' actions -------------------------------------------------------------------


def cancel(store: Store, tenant_id: str, order_id: str) -> dict[str, Any]:
    """Cancel a running execution: open attempts are cancelled, a running one loses its lease."""
    now = time.time()
    with store.write() as conn:
        ex = _execution(conn, tenant_id, order_id)
        won = conn.execute(
            update(executions)
            .where(executions.c.id == ex["id"], executions.c.state.not_in(_ENDED))
            .values(state=ExecutionState.CANCELLED.value, ended_at=now, updated_at=now)
        ).rowcount
        if not won:
            raise Conflict(f"order {order_id} cannot be cancelled: its execution is {ex['state']}")
        conn.execute(
            update(attempts)
            .where(attempts.c.execution_id == ex["id"], attempts.c.state.in_(_OPEN_ATTEMPTS))
            .values(state=AttemptState.CANCELLED.value, ended_at=now, lease_until=None)
        )
        _event(conn, tenant_id, order_id, "cancelled", {"step": ex["current_step"]}, now)
    return get_order(store, tenant_id, order_id)


def retry(store: Store, tenant_id: str, order_id: str) -> dict[str, Any]:
    """Re-run the step that failed (a new visit, so a new idempotency key), then continue."""
    with store.read() as conn:
        ex = _execution(conn, tenant_id, order_id)
        failed = conn.execute(
            select(attempts.c.step_id)
            .where(
                attempts.c.execution_id == ex["id"],
                attempts.c.state.in_(
                    [
                        AttemptState.ERROR.value,
                        AttemptState.TIMEOUT.value,
                        AttemptState.CANCELLED.value,
                    ]
                ),
            )
            .order_by(attempts.c.id.desc())
            .limit(1)
        ).scalar()
    if (
        ex["state"] not in (ExecutionState.FAILED.value, ExecutionState.CANCELLED.value)
        or failed is None
    ):
        raise Conflict(f"order {order_id} has nothing to retry: its execution is {ex['state']}")
    return _restart(store, tenant_id, order_id, str(failed), "retried")


def rerun(store: Store, tenant_id: str, order_id: str, step_id: str) -> dict[str, Any]:
    """Run the execution again from ``step_id`` (it must be in the execution's flow version)."""
    return _restart(store, tenant_id, order_id, step_id, "rerun")


def _restart(
    store: Store, tenant_id: str, order_id: str, step_id: str, kind: str
) -> dict[str, Any]:
    now = time.time()
    with store.write() as conn:
        ex = _execution(conn, tenant_id, order_id)
        _, definition = store.flow_definition(conn, ex["flow_pk"], ex["flow_version"])
        step = next((s for s in definition if s["stepDefinitionId"] == step_id), None)
        if step is None:
            raise NotFound(f"flow version {ex['flow_version']} has no step {step_id!r}")
        visits = conn.execute(
            update(executions)
            .where(executions.c.id == ex["id"], executions.c.state.in_(_ENDED))
            .values(
                state=ExecutionState.RUNNING.value,
                current_step=step_id,
                had_error=False,
                last_error=None,
                visits=executions.c.visits + 1,
                ended_at=None,
                updated_at=now,
            )
            .returning(executions.c.visits)
        ).scalar()
        if visits is None:
            raise Conflict(
                f"order {order_id} is still running: cancel it first or wait for it to end"
            )
        row = new_attempt(
            ex["id"], tenant_id, Next(step_id, 1, 0.0, True), visits, now, step["type"]
        )
        conn.execute(insert(attempts), row)
        _event(conn, tenant_id, order_id, kind, {"stepDefinitionId": step_id}, now)
        store.notify_enqueued(conn)
    return get_order(store, tenant_id, order_id)


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


def queue_depth(store: Store) -> dict[str, int]:
    """Attempts waiting to run and running now (for /metrics and ``fabflow workers``)."""
    with store.read() as conn:
        return queue.depth(conn)


__all__ = [
    "OrderFilter",
    "cancel",
    "create_order",
    "get_order",
    "list_orders",
    "or_",
    "rerun",
    "retry",
]


# -- added for the API and the operators' CLI (issue 6) -------------------------------------


def tenant_events(
    store: Store, tenant_id: str, after: int = 0, limit: int = 500
) -> list[dict[str, Any]]:
    """The tenant's events with an id above ``after``, oldest first (for live updates)."""
    from fabflow.resources import iso

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


def find_tenant(store: Store, name: str) -> str:
    """The id of the tenant called ``name``; NotFound otherwise (never creates one)."""
    from fabflow.store.schema import tenants

    with store.read() as conn:
        found = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no tenant {name!r}")
    return str(found)


def list_workers(store: Store) -> list[dict[str, Any]]:
    """Every worker row, newest first, with the attempts it holds now (state running)."""
    from fabflow.resources import iso
    from fabflow.store.schema import workers

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


def create_orders(
    store: Store, items: Sequence[tuple[str, dict[str, Any], str]]
) -> list[tuple[dict[str, Any], bool] | NotFound | Conflict]:
    """Accept many validated ``(tenant id, order, flow id)`` in one transaction (the API's
    group commit: one commit serves every request that arrived meanwhile). Per item: what
    ``create_order`` returns, or the NotFound / Conflict of an unknown or archived flow."""
    try:
        with store.write() as conn:
            outcome = _insert_batch(store, conn, items, time.time())
            if any(isinstance(o, tuple) and o[1] for o in outcome):
                store.notify_enqueued(conn)
    except IntegrityError:  # another process took an externalId meanwhile: one by one
        return [_create_one(store, *item) for item in items]
    ids = [o[0] for o in outcome if isinstance(o, tuple)]
    with store.read() as conn:
        by_id = {r["id"]: r for r in load_resources(store, conn, ids)}
    return [(by_id[o[0]], o[1]) if isinstance(o, tuple) else o for o in outcome]


def _create_one(
    store: Store, tenant_id: str, order: dict[str, Any], flow_id: str
) -> tuple[dict[str, Any], bool] | NotFound | Conflict:
    try:
        return create_order(store, tenant_id, order, flow_id)
    except (NotFound, Conflict) as exc:
        return exc


def _insert_batch(
    store: Store, conn: Connection, items: Sequence[tuple[str, dict[str, Any], str]], now: float
) -> list[tuple[str, bool] | NotFound | Conflict]:
    """Rows for every new order, inserted with one statement per table."""
    known = _known_external(conn, items)
    flows_seen: dict[tuple[str, str], tuple[int, int] | NotFound | Conflict] = {}
    rows: dict[str, list[dict[str, Any]]] = {"o": [], "e": [], "a": [], "v": []}
    outcome: list[tuple[str, bool] | NotFound | Conflict] = []
    for tenant_id, order, flow_id in items:
        external = order.get("externalId")
        if external and (tenant_id, external) in known:
            outcome.append((known[(tenant_id, external)], False))
            continue
        flow = flows_seen.get((tenant_id, flow_id))
        if flow is None:
            flow = flows_seen[(tenant_id, flow_id)] = _flow_or_error(
                store, conn, tenant_id, flow_id
            )
        if not isinstance(flow, tuple):
            outcome.append(flow)
            continue
        order_id = _batch_rows(store, conn, rows, tenant_id, order, flow_id, flow, now)
        if external:
            known[(tenant_id, external)] = order_id
        outcome.append((order_id, True))
    _write_rows(conn, rows)
    return outcome


def _write_rows(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """The rows of new orders, one statement per table."""
    for statement, key in (
        (_INSERT_ORDER, "o"),
        (_INSERT_EXECUTION, "e"),
        (_INSERT_ATTEMPT, "a"),
        (_INSERT_EVENT, "v"),
    ):
        if rows[key]:
            conn.execute(statement, rows[key])


def _known_external(
    conn: Connection, items: Sequence[tuple[str, dict[str, Any], str]]
) -> dict[tuple[str, str], str]:
    wanted = {(t, o["externalId"]) for t, o, _ in items if o.get("externalId")}
    if not wanted:
        return {}
    query = select(orders.c.tenant_id, orders.c.external_id, orders.c.id).where(
        orders.c.tenant_id.in_({t for t, _ in wanted}),  # (tenant, externalId) is indexed
        orders.c.external_id.in_([e for _, e in wanted]),
    )
    return {(t, e): i for t, e, i in conn.execute(query) if (t, e) in wanted}


def _flow_or_error(
    store: Store, conn: Connection, tenant_id: str, flow_id: str
) -> tuple[int, int] | NotFound | Conflict:
    try:
        return store.current_flow(conn, tenant_id, flow_id)
    except (NotFound, Conflict) as exc:
        return exc


def _batch_rows(
    store: Store,
    conn: Connection,
    rows: dict[str, list[dict[str, Any]]],
    tenant_id: str,
    order: dict[str, Any],
    flow_id: str,
    flow: tuple[int, int],
    now: float,
) -> str:
    """Append the rows of one new order (its execution, first attempt and event); its id."""
    flow_pk, version = flow
    order_id, execution_id = new_id("ord"), new_id("exe")
    _, definition = store.flow_definition(conn, flow_pk, version)
    first_id, first_type = definition[0]["stepDefinitionId"], definition[0]["type"]
    rows["o"].append(
        dict(
            id=order_id,
            tenant_id=tenant_id,
            external_id=order.get("externalId"),
            flow_pk=flow_pk,
            status=None,
            customer=order.get("customer") or {},
            lines=order.get("lines") or [],
            data=order.get("data") or {},
            files=[],
            search=_search_text(order_id, order),
            created_at=now,
            updated_at=now,
        )
    )
    rows["e"].append(
        dict(
            id=execution_id,
            order_id=order_id,
            tenant_id=tenant_id,
            flow_pk=flow_pk,
            flow_version=version,
            state=ExecutionState.PENDING.value,
            current_step=first_id,
            had_error=False,
            visits=1,
            created_at=now,
            updated_at=now,
        )
    )
    nxt = Next(first_id, 1, 0.0, True)
    rows["a"].append(new_attempt(execution_id, tenant_id, nxt, 1, now, first_type))
    data = {"flowId": flow_id, "flowVersion": version}
    event = {"tenant_id": tenant_id, "order_id": order_id, "kind": "order_created"}
    rows["v"].append({**event, "data": data, "at": now})
    return order_id
