"""Status webhooks: ``/api/webhooks`` to add, list, change and remove a tenant's endpoints,
their delivery log, and sending a delivery again. See ``fabflow.store.webhooks``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.errors import InvalidInput, Problem
from fabflow.store import webhooks

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERRORS)
WebhookId = Annotated[str, Path(max_length=40)]
_CREATE_FIELDS = ("url", "events", "description")


@router.post("", status_code=201)
async def create(
    store: StoreDep, tenant: Tenant, body: Annotated[dict[str, Any], Body()]
) -> Response:
    """Add a webhook: ``{"url", "events": [...], "description"?}``. The answer holds its
    signing ``secret``, shown this once: deliveries carry ``Fabflow-Signature`` made with it."""
    unknown = [Problem(f"/{k}", "unknown field") for k in body if k not in _CREATE_FIELDS]
    if unknown:
        raise InvalidInput(f"invalid webhook: {unknown[0].pointer}: unknown field", unknown)
    made = await run_in_threadpool(
        webhooks.create_webhook,
        store,
        tenant,
        body.get("url"),
        body.get("events"),
        body.get("description", ""),
    )
    return json_response(made, status=201, headers={"Location": f"/api/webhooks/{made['id']}"})


@router.get("")
async def list_all(store: StoreDep, tenant: Tenant) -> Response:
    """The tenant's webhooks (never their secrets), and the event types there are."""
    found = await run_in_threadpool(webhooks.list_webhooks, store, tenant)
    return json_response({"webhooks": found, "eventTypes": list(webhooks.EVENT_TYPES)})


@router.get("/{webhook_id}")
async def get_one(store: StoreDep, tenant: Tenant, webhook_id: WebhookId) -> Response:
    return json_response(await run_in_threadpool(webhooks.get_webhook, store, tenant, webhook_id))


@router.patch("/{webhook_id}")
async def change(
    store: StoreDep,
    tenant: Tenant,
    webhook_id: WebhookId,
    body: Annotated[dict[str, Any], Body()],
) -> Response:
    """Change any of ``enabled``, ``events``, ``url``, ``description``."""
    changed = await run_in_threadpool(webhooks.update_webhook, store, tenant, webhook_id, body)
    return json_response(changed)


@router.delete("/{webhook_id}", status_code=204)
async def remove(store: StoreDep, tenant: Tenant, webhook_id: WebhookId) -> Response:
    """Remove the webhook and its delivery log; what was not sent yet is not sent."""
    await run_in_threadpool(webhooks.delete_webhook, store, tenant, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def deliveries(
    store: StoreDep,
    tenant: Tenant,
    webhook_id: WebhookId,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The delivery log, newest first: state, attempts, the last answer's status code,
    latency and first 1 KiB, the error, when the next attempt is."""
    page, after = await run_in_threadpool(
        webhooks.list_deliveries, store, tenant, webhook_id, cursor, limit
    )
    return json_response({"deliveries": page, "nextCursor": after})


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend")
async def resend(
    store: StoreDep, tenant: Tenant, webhook_id: WebhookId, delivery_id: int
) -> Response:
    """Send the delivery again, with the same event id (receivers drop repeats)."""
    found = await run_in_threadpool(webhooks.resend, store, tenant, webhook_id, delivery_id)
    return json_response(found)
