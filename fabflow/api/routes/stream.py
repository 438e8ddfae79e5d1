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

from fabflow.api.auth import RequestKey, StoreDep, Tenant
from fabflow.api.schemas import ERRORS
from fabflow.store import orders
from fabflow.store.repository import Store

router = APIRouter(prefix="/api/orders", tags=["orders"], responses=ERRORS)

# Event ids fit the events table's id column on every database (PostgreSQL's integer).
MAX_EVENT_ID = 2**63 - 1
POLL_SECONDS = 0.5
KEEPALIVE_POLLS = 30  # a comment every 15 s keeps proxies from closing an idle stream
_SSE: dict[int | str, dict[str, Any]] = {
    "200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}
}


def _message(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _changes(
    request: Request, store: Store, tenant: str, after: int, key: str
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    yield _message("counts", await run_in_threadpool(orders.state_counts, store, tenant))
    quiet = 0
    while not request.app.state.stopping.is_set():
        # The key is looked up again at every poll, past the auth cache: a revoked key's
        # stream ends within a poll, not when the browser happens to reconnect.
        if await run_in_threadpool(store.authenticate, key) != tenant:
            yield _message("revoked", {"message": "the API key is unknown or revoked"})
            return
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


def resume_after(last_event_id: str | None, newest: int) -> int:
    """The event id a stream continues after: the client's ``Last-Event-ID`` when it is one
    of the tenant's events so far, else ``newest`` (now). A browser reconnects with the same
    id for ever, so an id that cannot be resumed must not fail the stream: a refusal or a
    failing poll would drop it again and again."""
    try:
        seen = int(last_event_id) if last_event_id is not None else newest
    except ValueError:  # not a number, or more digits than Python reads
        return newest
    return seen if 0 <= seen <= newest else newest


@router.get("/stream", responses=_SSE)
async def stream(
    request: Request,
    store: StoreDep,
    tenant: Tenant,
    key: RequestKey,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events: ``order`` (``{id, orderId, kind, data, at}``) for each change of any
    of the tenant's orders, then ``counts`` (executions by state). Reconnecting with
    ``Last-Event-ID`` resumes where the stream stopped; an id that is not one the stream could
    have sent (not a number, beyond the tenant's newest event) starts it from now. Once the
    key is revoked, the stream sends ``revoked`` and ends within half a second."""
    newest = await run_in_threadpool(orders.last_event_id, store, tenant)
    after = resume_after(last_event_id, newest)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _changes(request, store, tenant, after, key),
        media_type="text/event-stream",
        headers=headers,
    )
