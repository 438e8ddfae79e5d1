"""Bulk actions: retry or cancel every order a filter (or a list of ids) names, at once.

When a receiver was down for an hour, the job is "retry all 60 failed orders of the erp flow".
Each order is acted on in its own transaction, exactly as one retry or cancel would be (and
recorded with who acted); an order whose state does not allow the action is skipped with the
reason, never half-done. Only the tenant's own orders are ever looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fabflow.errors import Conflict, InvalidInput, NotFound, Problem
from fabflow.store import audit
from fabflow.store.orders import actions
from fabflow.store.orders.read import OrderFilter, matching_ids
from fabflow.store.repository import Store

MAX_ORDERS = 1000
Action = Literal["retry", "cancel"]
_ACTIONS: dict[str, Callable[[Store, str, str, str | None], None]] = {
    "retry": lambda store, tenant, order, by: actions.apply_restart(
        store, tenant, order, None, by, bulk=True
    ),
    "cancel": lambda store, tenant, order, by: actions.apply_cancel(
        store, tenant, order, by, bulk=True
    ),
}


@dataclass
class BulkResult:
    """What a bulk action did: how many orders matched, which were acted on, which were
    skipped and why."""

    action: str
    matched: int
    acted: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["actedCount"], body["skippedCount"] = len(self.acted), len(self.skipped)
        return body


def bulk_action(
    store: Store,
    tenant_id: str,
    action: Action,
    *,
    ids: Sequence[str] | None = None,
    flt: OrderFilter | None = None,
    by: str | None = None,
) -> BulkResult:
    """Apply ``action`` to the orders ``ids`` names, or else those ``flt`` keeps (at most
    1,000: a wider filter is refused, so nothing is done by halves)."""
    targets = list(dict.fromkeys(ids)) if ids is not None else _matching(store, tenant_id, flt)
    result = BulkResult(action, len(targets))
    act = _ACTIONS[action]
    for order_id in targets:
        try:
            act(store, tenant_id, order_id, by)
        except (Conflict, NotFound) as exc:
            result.skipped.append({"id": order_id, "reason": exc.message})
            continue
        result.acted.append(order_id)
    with store.write() as conn:
        shown = {
            "matched": result.matched,
            "acted": len(result.acted),
            "skipped": len(result.skipped),
            **({"ids": targets[:20]} if ids is not None else {"filter": _shown(flt)}),
        }
        audit.record(conn, tenant_id, f"bulk_{action}", f"{len(targets)} orders", shown, by)
    return result


def _shown(flt: OrderFilter | None) -> dict[str, Any]:
    """The filter as the audit trail shows it: only what was set."""
    if flt is None:
        return {}
    return {k: v for k, v in asdict(flt).items() if v not in (None, "", [], ())}


def _matching(store: Store, tenant_id: str, flt: OrderFilter | None) -> list[str]:
    if flt is None or flt == OrderFilter():
        message = "give a filter (state, flowId, status...) or ids: a bulk action on every order"
        raise InvalidInput(f"invalid request: /filter: {message}", [Problem("/filter", message)])
    found = matching_ids(store, tenant_id, flt, MAX_ORDERS + 1)
    if len(found) > MAX_ORDERS:
        message = f"more than {MAX_ORDERS} orders match: narrow the filter (a date range)"
        raise InvalidInput(f"invalid request: /filter: {message}", [Problem("/filter", message)])
    return found
