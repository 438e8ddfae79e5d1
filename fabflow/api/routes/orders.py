"""Orders: intake, the list with filters and cursor pagination, one order, its events, and the
operators' actions (retry, retry now, rerun from a step, cancel)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import Actor, StoreDep, Tenant
from fabflow.api.group_commit import OrderBatcher
from fabflow.api.routes.stream import MAX_EVENT_ID
from fabflow.api.schemas import ERRORS, ORDER_BODY, RerunBody, json_response
from fabflow.errors import Conflict, InvalidInput, InvalidOrder, NotFound, Problem
from fabflow.lifecycle.health import HealthState
from fabflow.lifecycle.states import ExecutionState
from fabflow.order_input import check_order, patched_data
from fabflow.production.registry import products
from fabflow.store import orders
from fabflow.store.products import find_product

router = APIRouter(prefix="/api/orders", tags=["orders"], responses=ERRORS)

OrderId = Annotated[str, Path(max_length=40, description="The order's id (ord_...).")]
MAX_PAGE = 200
INLINE_LINES = 4  # orders with more lines are checked off the event loop (a line is CPU work)


@router.post("", status_code=201, openapi_extra=ORDER_BODY)
async def create_order(
    request: Request, store: StoreDep, tenant: Tenant, body: Annotated[Any, Body()]
) -> Response:
    """Accept an order (201), or return the tenant's order with the same ``externalId`` (200).
    Every problem is reported at once (422), with a JSON Pointer into the body."""
    if _small(body):  # a thread hop costs more than checking a few lines here
        order = _checked(store, tenant, body)
    else:
        order = await run_in_threadpool(_checked, store, tenant, body)
    batcher: OrderBatcher = request.app.state.order_batcher
    try:
        resource, created = await batcher.create(tenant, order, order["flowId"])
    except (NotFound, Conflict) as exc:  # unknown or archived flow: a problem of the input
        problem = _as_flow_problem(exc)
        raise InvalidOrder(f"invalid order: /flowId: {problem.message}", [problem]) from None
    location = {"Location": f"/api/orders/{resource['id']}"}
    return json_response(resource, 201 if created else 200, location)


def _small(body: Any) -> bool:
    """Cheap enough to check on the event loop: a few lines of built-in products (a tenant's
    own product is looked up in the database, off the loop)."""
    lines = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(lines, list):
        return True
    builtin = products()
    return len(lines) <= INLINE_LINES and all(
        not isinstance(line, dict) or line.get("product") in builtin for line in lines
    )


def _checked(store: StoreDep, tenant: str, body: Any) -> dict[str, Any]:
    """The order ready to store, or InvalidOrder with every problem (the flow's included)."""
    try:
        return check_order(body, find=find_product(store, tenant))
    except InvalidOrder as exc:  # report an unknown flow too, so one answer lists everything
        _add_flow_problem(store, tenant, body, exc)
        raise


def _add_flow_problem(store: StoreDep, tenant: str, body: Any, exc: InvalidOrder) -> None:
    """Add the problem of the order's flow (unknown, archived) to those of ``exc``, first."""
    flow_id = body.get("flowId", "default") if isinstance(body, dict) else None
    if not isinstance(flow_id, str) or any(p.pointer == "/flowId" for p in exc.problems):
        return  # no flow to look up: a flowId that is not text, too long, or holds NUL
    extra = _flow_problem(store, tenant, flow_id)
    if extra is not None:
        exc.problems.insert(0, extra)


def _as_flow_problem(exc: NotFound | Conflict) -> Problem:
    message = f"{exc.message}: create it with POST /api/flows, or name another flowId"
    return Problem("/flowId", message)


# The flow problem of a refused order, remembered a second: a flood of refused orders (one
# tenant's poison) must not become a flood of reads that slows every tenant's intake. Only
# the answer to an order refused anyway can be that stale; tenant ids are unique, so one
# table serves every app of the process.
FLOW_PROBLEM_SECONDS = 1.0
_MAX_REMEMBERED = 4096
_flow_problems: dict[tuple[str, str], tuple[float, Problem | None]] = {}


def _flow_problem(store: StoreDep, tenant: str, flow_id: str) -> Problem | None:
    """The problem with the order's flow (unknown, archived), if any."""
    now = time.monotonic()
    known = _flow_problems.get((tenant, flow_id))
    if known is not None and now - known[0] < FLOW_PROBLEM_SECONDS:
        return known[1]
    try:
        with store.read() as conn:
            store.current_flow(conn, tenant, flow_id)
        problem = None
    except (NotFound, Conflict) as exc:
        problem = _as_flow_problem(exc)
    if len(_flow_problems) >= _MAX_REMEMBERED:
        _flow_problems.clear()
    _flow_problems[(tenant, flow_id)] = (now, problem)
    return problem


def _instant(text: str | None, name: str) -> float | None:
    """UNIX seconds of an ISO 8601 time (UTC when it names no zone)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        message = "an ISO 8601 date or time, e.g. 2024-05-01 or 2024-05-01T12:00:00Z"
        raise InvalidInput(
            f"invalid request: query.{name}: {message}", [Problem(f"query.{name}", message)]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


SEARCH = "Text in the id, externalId, customer name or email; case and accents ignored."
STATUS = "The order's status, in any case (failed finds Failed)."
SORT = (
    "created, updated, status or flow; a leading - sorts descending. Default -created "
    "(newest first)."
)
HEALTH = "unhealthy: a step failing and being retried, a wait or the flow's deadline passed."
WAITING_FOR = "Only orders that wait on this: confirmation (a person confirms or rejects)."
CURSOR = "nextCursor of a page (opaque), with the sort it came with."


@router.get("")
def list_orders(
    store: StoreDep,
    tenant: Tenant,
    status: Annotated[str | None, Query(max_length=200, description=STATUS)] = None,
    state: Annotated[ExecutionState | None, Query(description="Execution state.")] = None,
    flow_id: Annotated[str | None, Query(alias="flowId", max_length=100)] = None,
    waiting_for: Annotated[
        Literal["confirmation"] | None, Query(alias="waitingFor", description=WAITING_FOR)
    ] = None,
    health: Annotated[HealthState | None, Query(description=HEALTH)] = None,
    q: Annotated[str | None, Query(max_length=200, description=SEARCH)] = None,
    created_after: Annotated[str | None, Query(alias="createdAfter", max_length=40)] = None,
    created_before: Annotated[str | None, Query(alias="createdBefore", max_length=40)] = None,
    sort: Annotated[str, Query(max_length=20, description=SORT)] = "-created",
    cursor: Annotated[str | None, Query(max_length=1000, description=CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    """Newest first, or as ``sort`` says. Follow ``nextCursor`` (null on the last page) with
    the same filters and sort. ``counts`` has the executions by state among the orders the
    other filters keep (all but ``state``), ``healthCounts`` the orders by health among those
    all filters but ``health`` keep."""
    flt = orders.OrderFilter(
        status=status,
        state=None if state is None else state.value,
        flow_id=flow_id,
        waiting_for=waiting_for,
        health=health,
        q=q,
        created_after=_instant(created_after, "createdAfter"),
        created_before=_instant(created_before, "createdBefore"),
    )
    order_by = orders.OrderSort.parse(sort)
    page, next_cursor = orders.list_orders(store, tenant, flt, cursor, limit, order_by)
    body = {
        "orders": page,
        "nextCursor": next_cursor,
        "sort": order_by.text,
        "counts": orders.state_counts(store, tenant, flt),
        "healthCounts": orders.health_counts(store, tenant, flt),
    }
    return json_response(body)


@router.get("/{order_id}")
def get_order(store: StoreDep, tenant: Tenant, order_id: OrderId) -> Response:
    """The order resource: status, history, files, execution and every attempt, and its
    ``run``: each step of its flow version with its state and attempts, and the path taken."""
    return json_response(orders.get_order(store, tenant, order_id))


@router.get("/{order_id}/events")
def order_events(
    store: StoreDep,
    tenant: Tenant,
    order_id: OrderId,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events with a larger id.")] = 0,
) -> Response:
    """What happened to the order, oldest first."""
    # No event id exceeds MAX_EVENT_ID, so a larger ``after`` finds what it finds: nothing
    # (and PostgreSQL's integer column could not compare with it).
    found = orders.order_events(store, tenant, order_id, min(after, MAX_EVENT_ID))
    return json_response({"events": found})


@router.post("/{order_id}/retry")
def retry_order(store: StoreDep, tenant: Tenant, by: Actor, order_id: OrderId) -> Response:
    """Run the failed (or cancelled) step again, then continue the flow. 409 while running."""
    return json_response(orders.retry(store, tenant, order_id, by))


@router.post("/{order_id}/retry-now")
def retry_order_now(store: StoreDep, tenant: Tenant, by: Actor, order_id: OrderId) -> Response:
    """Run the queued retry of a failing step now, skipping its backoff (the same attempt,
    with the same idempotency key). 409 unless a retry is waiting."""
    return json_response(orders.retry_now(store, tenant, order_id, by))


@router.post("/{order_id}/rerun")
def rerun_order(
    store: StoreDep,
    tenant: Tenant,
    by: Actor,
    order_id: OrderId,
    body: Annotated[RerunBody, Body()],
) -> Response:
    """Run the order's flow again from ``stepDefinitionId``, on its own flow version or on
    ``flowVersion`` (a number, or "latest"), after merging ``data`` (RFC 7386) into the
    order's data. Both changes are recorded on the rerun's event. 409 while running."""
    row = orders.get_order_row(store, tenant, order_id)  # 404 first: it must be the tenant's
    data = None if body.data is None else patched_data(row["data"] or {}, body.data)
    fix = orders.Fix(flow_version=body.flow_version, data=data, data_patch=body.data)
    try:
        return json_response(
            orders.rerun(store, tenant, order_id, body.step_definition_id, by, fix)
        )
    except NotFound as exc:  # the order exists, so it is the step that does not
        problem = Problem("/stepDefinitionId", exc.message)
        raise InvalidInput(f"invalid request: {exc.message}", [problem]) from None


@router.post("/{order_id}/cancel")
def cancel_order(store: StoreDep, tenant: Tenant, by: Actor, order_id: OrderId) -> Response:
    """Cancel the order's execution; a running step loses its lease. 409 once it has ended."""
    return json_response(orders.cancel(store, tenant, order_id, by))
