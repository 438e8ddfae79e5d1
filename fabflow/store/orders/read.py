"""Reading orders: the order resource, the filtered and sorted list, and its counts."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    case,
    func,
    not_,
    or_,
    select,
)

from fabflow.errors import NotFound
from fabflow.lifecycle.health import HealthState
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.resources import (
    ATTEMPT_COLUMNS,
    CREATED_STATUS,
    HISTORY_COLUMNS,
    ORDER_COLUMNS,
    RESOURCE_EXECUTION_COLUMNS,
    FileLinks,
    order_resource,
    run_view,
)
from fabflow.store import fastpath
from fabflow.store.orders.health import health_json, unhealthy, unhealthy_count
from fabflow.store.orders.search import fold
from fabflow.store.orders.sorting import OrderSort, cursor_after, ordered
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, executions, flows, orders, status_history


def get_order(store: Store, tenant_id: str, order_id: str) -> dict[str, Any]:
    """The order resource with its ``run``; NotFound for an unknown id or another tenant's
    order."""
    with store.read() as conn:
        resources = load_resources(store, conn, [order_id], tenant_id, with_run=True)
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
    alone: Collection[str] = (),
    with_run: bool = False,
) -> list[dict[str, Any]]:
    """Order resources for ``order_ids`` (in that order), with four queries whatever their count.

    ``stored_files``, when given, receives each order's file records as stored (with their
    store keys, which the resource does not show). ``executions``, when given, holds the
    orders' execution rows by order id, already read in this transaction. The orders in
    ``alone`` are read without their attempts and status history (empty in the resource):
    for a choice that reads neither. ``with_run`` adds each order's ``run`` (its steps' states
    and the path taken): what a person looks at, not what a step reads."""
    if tenant_id is None:
        found = fastpath.fetch(conn, _ORDERS_BY_ID, {"ids": order_ids})
    else:
        found = fastpath.fetch(
            conn, _ORDERS_BY_ID_FOR_TENANT, {"ids": order_ids, "tenant_id": tenant_id}
        )
    order_rows = {r["id"]: r for r in found}
    if stored_files is not None:
        stored_files.update({oid: list(r["files"] or []) for oid, r in order_rows.items()})
    if not order_rows:
        return []
    ids = {"ids": list(order_rows)}
    exec_rows = executions
    if exec_rows is None:
        exec_rows = {r["order_id"]: r for r in fastpath.fetch(conn, _EXECUTIONS_BY_ORDER, ids)}
    by_exec: dict[str, list[Any]] = {}
    history: dict[str, list[Any]] = {}
    skipped = set(alone)
    full = [oid for oid in order_rows if oid not in skipped]
    if full:
        exec_ids = {"ids": [exec_rows[oid]["id"] for oid in full]}
        for a in fastpath.fetch(conn, _ATTEMPTS_BY_EXECUTION, exec_ids):
            by_exec.setdefault(a["execution_id"], []).append(a)
        for h in fastpath.fetch(conn, _HISTORY_BY_ORDER, {"ids": full}):
            history.setdefault(h["order_id"], []).append(h)
    out = []
    now = time.time()
    links = None  # the key is read (made, the first time) only when there is a file to sign
    if any(r["files"] for r in order_rows.values()):
        links = FileLinks(store.file_link_secret(), store.settings.file_link_seconds, now)
    for oid in order_ids:
        if oid not in order_rows:
            continue
        ex, order = exec_rows[oid], order_rows[oid]
        flow_meta, definition = store.flow_definition(conn, ex["flow_pk"], ex["flow_version"])
        rules = store.flow_rules(conn, ex["flow_pk"], ex["flow_version"])
        tried = by_exec.get(ex["id"], [])
        resource = order_resource(
            order,
            ex,
            tried,
            history.get(oid, []),
            flow_meta,
            store.settings.public_url,
            health_json(ex, tried, order["created_at"], rules, now),
            links,
        )
        if with_run:
            resource["run"] = run_view(definition, tried)
        out.append(resource)
    return out


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    state: str | None = None
    flow_id: str | None = None
    q: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    waiting_for: str | None = None  # "confirmation": executions waiting on a person
    health: HealthState | None = None


NEWEST = OrderSort()


def _waits_for(kind: str) -> ColumnElement[bool]:
    """Waiting executions whose open wait is of ``kind`` (the attempts' index by execution)."""
    waiting = select(attempts.c.id).where(
        attempts.c.execution_id == executions.c.id,
        attempts.c.state == AttemptState.WAITING.value,
        attempts.c.wait_kind == kind,
    )
    return and_(executions.c.state == ExecutionState.WAITING.value, waiting.exists())


def list_orders(
    store: Store,
    tenant_id: str,
    flt: OrderFilter,
    cursor: str | None = None,
    limit: int = 50,
    sort: OrderSort = NEWEST,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, or in ``sort``'s order; returns ``(orders, next cursor)``."""
    query = ordered(_filtered(tenant_id, flt), sort, cursor).limit(limit + 1)
    with store.read() as conn:
        rows = conn.execute(query).all()
        page = [r[0] for r in rows[:limit]]
        resources = load_resources(store, conn, page, tenant_id)
    if len(rows) <= limit:
        return resources, None
    last = rows[limit - 1]
    return resources, cursor_after(sort, last[0], last[1])


def matching_ids(store: Store, tenant_id: str, flt: OrderFilter, limit: int) -> list[str]:
    """The ids of the tenant's orders that ``flt`` keeps, newest first, at most ``limit``."""
    query = _filtered(tenant_id, flt).order_by(orders.c.id.desc()).limit(limit)
    with store.read() as conn:
        return [str(r[0]) for r in conn.execute(query)]


def _filtered(tenant_id: str, flt: OrderFilter, *columns: Any) -> Select[Any]:
    """``columns`` (the orders' ids by default) of the tenant's orders the filter keeps."""
    query = (
        select(*(columns or (orders.c.id,)))
        .select_from(orders)
        .join(executions, executions.c.order_id == orders.c.id)
        .where(orders.c.tenant_id == tenant_id)
    )
    status = None if flt.status is None else flt.status.lower()  # "failed" finds "Failed"
    if status == CREATED_STATUS.lower():  # what the resource shows until a step sets one
        query = query.where(or_(orders.c.status.is_(None), func.lower(orders.c.status) == status))
    elif status is not None:
        query = query.where(func.lower(orders.c.status) == status)
    if flt.health is not None:
        sick = unhealthy(time.time(), tenant_id)
        query = query.where(sick if flt.health is HealthState.UNHEALTHY else not_(sick))
    if flt.state is not None:
        query = query.where(executions.c.state == flt.state)
    if flt.waiting_for is not None:
        query = query.where(_waits_for(flt.waiting_for))
    if flt.flow_id is not None:
        query = query.join(flows, flows.c.pk == orders.c.flow_pk).where(
            flows.c.flow_id == flt.flow_id
        )
    if flt.q:  # folded as the stored text is: accents and case ignored
        query = query.where(orders.c.search.contains(fold(flt.q), autoescape=True))
    if flt.created_after is not None:
        query = query.where(orders.c.created_at >= flt.created_after)
    if flt.created_before is not None:
        query = query.where(orders.c.created_at < flt.created_before)
    return query


def state_counts(store: Store, tenant_id: str, flt: OrderFilter | None = None) -> dict[str, int]:
    """The tenant's executions by state, among the orders ``flt`` keeps but for its state
    (each state's count is what choosing that state would show)."""
    others = OrderFilter() if flt is None else replace(flt, state=None)
    if others == OrderFilter():  # the whole tenant: its index alone, no join
        query = (
            select(executions.c.state, func.count())
            .where(executions.c.tenant_id == tenant_id)
            .group_by(executions.c.state)
        )
    else:
        query = _filtered(tenant_id, others, executions.c.state, func.count()).group_by(
            executions.c.state
        )
    with store.read() as conn:
        counts = {s.value: 0 for s in ExecutionState}
        counts.update({state: n for state, n in conn.execute(query).all()})
    return counts


def health_counts(store: Store, tenant_id: str, flt: OrderFilter | None = None) -> dict[str, int]:
    """The tenant's orders, healthy and unhealthy now, among those ``flt`` keeps but for its
    health."""
    others = OrderFilter() if flt is None else replace(flt, health=None)
    now = time.time()
    with store.read() as conn:
        if others == OrderFilter():
            total_query = select(func.count()).where(executions.c.tenant_id == tenant_id)
            total = int(conn.execute(total_query).scalar_one())
            sick = unhealthy_count(conn, tenant_id, now)
        else:
            is_sick = case((unhealthy(now, tenant_id), 1), else_=0)
            query = _filtered(tenant_id, others, func.count(), func.coalesce(func.sum(is_sick), 0))
            total, sick = (int(n) for n in conn.execute(query).one())
    return {HealthState.HEALTHY.value: total - sick, HealthState.UNHEALTHY.value: sick}


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
