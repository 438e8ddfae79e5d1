"""Setting up a tenant, a flow and orders in the store, and waiting for executions to end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fabflow.store import orders
from fabflow.store.repository import Store

ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Placed:
    """An order the test placed: the ids its side effects are keyed by."""

    order_id: str
    execution_id: str

    def key(self, visit: int) -> str:
        """The idempotency key of the ``visit``-th step this execution runs."""
        return f"{self.execution_id}.{visit}"


def place_orders(
    store: Store, tenant: str, flow_id: str, count: int, prefix: str = "E2E"
) -> list[Placed]:
    """``count`` orders through the API's own intake function, each with an externalId."""
    placed = []
    for n in range(count):
        order = {
            "externalId": f"{prefix}-{n:04d}",
            "customer": {"name": f"Customer {n}", "email": f"c{n}@example.com"},
            "lines": [],
            "data": {"n": n},
        }
        resource, created = orders.create_order(store, tenant, order, flow_id)
        assert created
        placed.append(Placed(resource["id"], resource["execution"]["id"]))
    return placed


def states(store: Store, tenant: str) -> Counter[str]:
    return Counter({k: v for k, v in orders.state_counts(store, tenant).items() if v})


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until it holds; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def order_of(store: Store, tenant: str, order_id: str) -> dict[str, Any]:
    return orders.get_order(store, tenant, order_id)
