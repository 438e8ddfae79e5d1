"""``POST /api/orders/bulk/{retry|cancel}``: one action on every order a filter names.

Registered before the orders routes, so ``bulk`` is never read as an order id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import Actor, StoreDep, Tenant
from fabflow.api.routes.orders import _instant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.lifecycle.health import HealthState
from fabflow.lifecycle.states import ExecutionState
from fabflow.store.orders import OrderFilter
from fabflow.store.orders.bulk import MAX_ORDERS, bulk_action

router = APIRouter(prefix="/api/orders/bulk", tags=["orders"], responses=ERRORS)


class BulkFilter(BaseModel):
    """The orders list's filters, as ``GET /api/orders`` takes them."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, max_length=200)
    state: ExecutionState | None = None
    flow_id: str | None = Field(default=None, alias="flowId", max_length=100)
    health: HealthState | None = None
    q: str | None = Field(default=None, max_length=200)
    created_after: str | None = Field(default=None, alias="createdAfter", max_length=40)
    created_before: str | None = Field(default=None, alias="createdBefore", max_length=40)
    waiting_for: Literal["confirmation"] | None = Field(default=None, alias="waitingFor")

    def to_filter(self) -> OrderFilter:
        return OrderFilter(
            status=self.status,
            state=None if self.state is None else self.state.value,
            flow_id=self.flow_id,
            waiting_for=self.waiting_for,
            health=self.health,
            q=self.q,
            created_after=_instant(self.created_after, "createdAfter"),
            created_before=_instant(self.created_before, "createdBefore"),
        )


class BulkBody(BaseModel):
    """Which orders: ``filter`` (as the orders list filters them) or ``ids``."""

    model_config = ConfigDict(extra="forbid")

    filter: BulkFilter | None = None
    ids: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, max_length=MAX_ORDERS
    )


@router.post("/{action}")
async def bulk(
    store: StoreDep,
    tenant: Tenant,
    by: Actor,
    action: Annotated[Literal["retry", "cancel"], Path(description="retry or cancel")],
    body: BulkBody,
) -> Response:
    """Retry (failed or cancelled) or cancel (not ended) every order of ``ids``, or every order
    ``filter`` keeps (at most 1,000: a wider filter is refused). Each order is acted on alone,
    as its own action would be, and recorded with who acted; one whose state does not allow
    the action is skipped with the reason. Answers ``matched``, ``acted`` and ``skipped``."""
    flt = None if body.filter is None else body.filter.to_filter()
    result = await run_in_threadpool(
        bulk_action, store, tenant, action, ids=body.ids, flt=flt, by=by
    )
    return json_response(result.as_json())
