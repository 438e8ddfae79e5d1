"""Orders in the store: accepting them, reading them, their events, and the operators' actions
applied. Each function takes the ``Store`` and runs in its own transaction."""

from __future__ import annotations

from fabflow.store.fleet import find_tenant, list_workers, queue_depth
from fabflow.store.orders.accept import create_order, create_orders
from fabflow.store.orders.actions import Fix, cancel, rerun, retry, retry_now
from fabflow.store.orders.events import last_event_id, order_events, tenant_events
from fabflow.store.orders.read import (
    EXECUTION_COLUMNS,
    OrderFilter,
    get_order,
    get_order_row,
    health_counts,
    list_orders,
    load_resources,
    state_counts,
)
from fabflow.store.orders.sorting import OrderSort

__all__ = [
    "EXECUTION_COLUMNS",
    "Fix",
    "OrderFilter",
    "OrderSort",
    "cancel",
    "create_order",
    "create_orders",
    "find_tenant",
    "get_order",
    "get_order_row",
    "health_counts",
    "last_event_id",
    "list_orders",
    "list_workers",
    "load_resources",
    "order_events",
    "queue_depth",
    "rerun",
    "retry",
    "retry_now",
    "state_counts",
    "tenant_events",
]
