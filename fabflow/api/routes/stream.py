"""Live updates for the web UI: server-sent events whenever any of the tenant's orders changes.

The events table is the source: every change of an order appends a row there in the same
transaction, so polling it by id (every half second) misses nothing and needs no broker; it
works the same whichever process or machine made the change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.schemas import ERRORS
from fabflow.store import orders
from fabflow.store.repository import Store

router = APIRouter(prefix="/api/orders", tags=["orders"], responses=ERRORS)

POLL_SECONDS = 0.5
KEEPALIVE_POLLS = 30  # a comment every 15 s keeps proxies from closing an idle stream
_SSE: dict[int | str, dict[str, Any]] = {
    "200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}
}


def _message(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _changes(request: Request, store: Store, tenant: str, after: int) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    yield _message("counts", await run_in_threadpool(orders.state_counts, store, tenant))
    quiet = 0
    while not request.app.state.stopping.is_set():
        found = await run_in_threadpool(orders.tenant_events, store, tenant, after)
        for event in found:
            after = event["id"]
            yield _message("order", event, after)
        if found:
            yield _message("counts", await run_in_threadpool(orders.state_counts, store, tenant))
            quiet = 0
        else:
            quiet += 1
            if quiet >= KEEPALIVE_POLLS:
                quiet = 0
                yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)


@router.get("/stream", responses=_SSE)
async def stream(
    request: Request,
    store: StoreDep,
    tenant: Tenant,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """Server-sent events: ``order`` (``{id, orderId, kind, data, at}``) for each change of any
    of the tenant's orders, then ``counts`` (executions by state). Reconnecting with
    ``Last-Event-ID`` resumes where the stream stopped."""
    after = last_event_id
    if after is None:
        after = await run_in_threadpool(orders.last_event_id, store, tenant)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _changes(request, store, tenant, after), media_type="text/event-stream", headers=headers
    )
