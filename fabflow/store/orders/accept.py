"""Accepting orders: each new order with its execution, first attempt and event, in one
transaction; many orders arriving together in one (the API's group commit).

An ``externalId`` the tenant already used returns the existing order instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from fabflow.errors import Conflict, FabflowError, InvalidOrder, NotFound, Problem
from fabflow.ids import new_id
from fabflow.lifecycle.states import ExecutionState
from fabflow.lifecycle.transition import first_attempt
from fabflow.store.fastpath import dumps
from fabflow.store.orders.read import get_order, load_resources
from fabflow.store.orders.search import search_text
from fabflow.store.queue.transitions import new_attempt
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, events, executions, orders

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
    returns the existing order with ``created`` False; InvalidOrder for an order the store
    cannot encode."""
    refused = _unencodable(order)
    if refused is not None:
        raise refused
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
    rows = _NewRows()
    with store.write() as conn:
        flow = store.current_flow(conn, tenant_id, flow_id)
        order_id = _batch_rows(store, conn, rows, tenant_id, order, flow_id, flow, time.time())
        _write_rows(conn, rows)
        store.notify_enqueued(conn)
    return order_id


def _find_external(store: Store, tenant_id: str, external_id: str) -> str | None:
    with store.read() as conn:
        found = conn.execute(
            select(orders.c.id).where(
                orders.c.tenant_id == tenant_id, orders.c.external_id == external_id
            )
        ).scalar()
    return None if found is None else str(found)


def create_orders(
    store: Store, items: Sequence[tuple[str, dict[str, Any], str]]
) -> list[tuple[dict[str, Any], bool] | FabflowError | StatementError]:
    """Accept many validated ``(tenant id, order, flow id)`` in one transaction (the API's
    group commit: one commit serves every request that arrived meanwhile). Per item: what
    ``create_order`` returns, the NotFound / Conflict of an unknown or archived flow, or the
    InvalidOrder of one the store cannot encode; after an IntegrityError, one by one, with
    each order's own store error. Any other error fails the whole batch (the API's group
    commit then writes its orders one by one)."""
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
) -> tuple[dict[str, Any], bool] | FabflowError | StatementError:
    try:
        return create_order(store, tenant_id, order, flow_id)
    except (NotFound, Conflict) as exc:
        return exc
    except StatementError as exc:  # this order's own (a value the database refuses)
        if isinstance(exc, OperationalError):  # the database's: the batch fails
            raise
        return exc


def _insert_batch(
    store: Store, conn: Connection, items: Sequence[tuple[str, dict[str, Any], str]], now: float
) -> list[tuple[str, bool] | FabflowError]:
    """Rows for every new order, inserted with one statement per table."""
    known = _known_external(conn, items)
    flows_seen: dict[tuple[str, str], tuple[int, int] | NotFound | Conflict] = {}
    rows = _NewRows()
    outcome: list[tuple[str, bool] | FabflowError] = []
    for tenant_id, order, flow_id in items:
        external = order.get("externalId")
        refused = _unencodable(order)
        if refused is not None:
            outcome.append(refused)
            continue
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


@dataclass
class _NewRows:
    """The rows of new orders, by table."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _write_rows(conn: Connection, rows: _NewRows) -> None:
    """The rows of new orders, one statement per table."""
    for statement, table_rows in (
        (_INSERT_ORDER, rows.orders),
        (_INSERT_EXECUTION, rows.executions),
        (_INSERT_ATTEMPT, rows.attempts),
        (_INSERT_EVENT, rows.events),
    ):
        if table_rows:
            conn.execute(statement, table_rows)


def _unencodable(order: dict[str, Any]) -> InvalidOrder | None:
    """The error of an order the store's JSON codec cannot write (intake refuses such orders
    first: this keeps one that got past it from failing the orders written with it)."""
    try:
        dumps(order)
    except (TypeError, ValueError) as exc:  # an integer beyond 64 bits, nesting too deep
        message = f"a value the store cannot encode: {exc}"
        return InvalidOrder(f"invalid order: {message}", [Problem("", message)])
    return None


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
    rows: _NewRows,
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
    rows.orders.append(
        dict(
            id=order_id,
            tenant_id=tenant_id,
            external_id=order.get("externalId") or None,  # blank is no id (order_input)
            flow_pk=flow_pk,
            status=None,
            customer=order.get("customer") or {},
            lines=order.get("lines") or [],
            data=order.get("data") or {},
            files=[],
            search=search_text(order_id, order),
            created_at=now,
            updated_at=now,
        )
    )
    rows.executions.append(
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
    first = first_attempt(first_id)
    rows.attempts.append(new_attempt(execution_id, tenant_id, first, 1, now, first_type))
    data = {"flowId": flow_id, "flowVersion": version}
    event = {"tenant_id": tenant_id, "order_id": order_id, "kind": "order_created"}
    rows.events.append({**event, "data": data, "at": now})
    return order_id
