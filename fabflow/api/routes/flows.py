"""Flows: create, list, read, new versions, archive, and validate without saving."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from fabflow.api.auth import Actor, StoreDep, Tenant
from fabflow.api.schemas import ERRORS, FLOW_BODY, json_body, json_response
from fabflow.errors import Conflict, InvalidFlow, NotFound, Problem
from fabflow.flows.explain import flow_graph
from fabflow.flows.model import Flow
from fabflow.flows.validate import DEFAULT_MAX_STEPS, ValidationResult, load_flow

router = APIRouter(prefix="/api/flows", tags=["flows"], responses=ERRORS)

FLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FlowId = Annotated[str, Path(max_length=100, description="The flow's id, e.g. default.")]
AnyJson = Annotated[Any, Body()]


def _checked_id(flow_id: Any, pointer: str) -> str:
    if not isinstance(flow_id, str) or not FLOW_ID.fullmatch(flow_id):
        message = (
            "a flow id is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
        raise InvalidFlow(f"invalid flow id: {message}", [Problem(pointer, message)])
    return flow_id


def _split(body: Any, given_id: str | None, id_pointer: str) -> tuple[str, Any]:
    """``(flow id, document to validate)`` from the object form (with ``id``) or the list form."""
    if isinstance(body, dict) and "id" in body:
        doc = {k: v for k, v in body.items() if k != "id"}
        if given_id is not None and body["id"] != given_id:
            message = f"the body's id {body['id']!r} is not the id in the URL {given_id!r}"
            raise InvalidFlow(message, [Problem("/id", message)])
        return _checked_id(body["id"], "/id"), doc
    if given_id is None:
        message = 'give the flow an id: "id" in the object form, or ?id= with the list form'
        raise InvalidFlow(message, [Problem(id_pointer, message)])
    return _checked_id(given_id, id_pointer), body


def _loaded(doc: Any, flow_id: str) -> tuple[Flow, ValidationResult]:
    result = load_flow(doc, name=flow_id, max_steps=DEFAULT_MAX_STEPS)
    if result.flow is None:
        errors = result.errors
        where = f"{errors[0].pointer}: " if errors[0].pointer else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidFlow(f"invalid flow: {where}{errors[0].message}{more}", result.problems)
    return result.flow, result


def _save(store: StoreDep, tenant: str, flow_id: str, doc: Any, by: str) -> dict[str, Any]:
    flow, result = _loaded(doc, flow_id)
    store.save_flow(
        tenant, flow_id, flow.to_json(), flow.name, flow.description, flow.deadline, by=by
    )
    resource = store.get_flow(tenant, flow_id)
    resource["warnings"] = [p.as_dict() for p in result.warnings]
    return resource


def _exists(store: StoreDep, tenant: str, flow_id: str) -> bool:
    try:
        store.get_flow(tenant, flow_id)
    except NotFound:
        return False
    return True


@router.post("", status_code=201, openapi_extra=json_body(FLOW_BODY))
def create_flow(
    store: StoreDep,
    tenant: Tenant,
    by: Actor,
    body: AnyJson,
    flow_id: Annotated[str | None, Query(alias="id", max_length=100)] = None,
) -> Response:
    """Create a flow from ``{"id", "name", "steps", "description"?}`` or the spec's list with
    ``?id=``. 409 when the id is taken: PUT adds a version."""
    fid, doc = _split(body, flow_id, "query.id")
    if _exists(store, tenant, fid):
        raise Conflict(f"flow {fid!r} exists: PUT /api/flows/{fid} adds a new version")
    return json_response(_save(store, tenant, fid, doc, by), 201)


@router.get("")
def list_flows(
    store: StoreDep, tenant: Tenant, archived: Annotated[bool, Query()] = False
) -> Response:
    """The tenant's flows (without their steps); ``?archived=true`` includes archived ones."""
    return json_response({"flows": store.list_flows(tenant, include_archived=archived)})


@router.post("/validate", openapi_extra=json_body({}))
async def validate_flow(request: Request, _tenant: Tenant) -> Response:
    """Check a flow without saving it: every problem, and its graph when it loads. Always 200,
    malformed JSON included (reported as a problem with its line and column)."""
    from starlette.concurrency import run_in_threadpool

    raw = await request.body()
    result = await run_in_threadpool(load_flow, raw or b"null", max_steps=DEFAULT_MAX_STEPS)
    graph = flow_graph(result.flow).as_dict() if result.flow is not None else None
    problems = [p.as_dict() for p in result.problems]
    return json_response({"valid": result.ok, "problems": problems, "graph": graph})


@router.get("/{flow_id}")
def get_flow(store: StoreDep, tenant: Tenant, flow_id: FlowId) -> Response:
    """The flow with the steps of its current version."""
    return json_response(store.get_flow(tenant, flow_id))


@router.put("/{flow_id}", openapi_extra=json_body(FLOW_BODY))
def update_flow(
    store: StoreDep, tenant: Tenant, by: Actor, flow_id: FlowId, body: AnyJson
) -> Response:
    """A new version of an existing flow (running orders keep the version they started on)."""
    fid, doc = _split(body, flow_id, "path.flow_id")
    store.get_flow(tenant, fid)  # 404 unless the tenant has it
    return json_response(_save(store, tenant, fid, doc, by))


@router.get("/{flow_id}/versions")
def list_versions(store: StoreDep, tenant: Tenant, flow_id: FlowId) -> Response:
    return json_response({"versions": store.flow_versions(tenant, flow_id)})


@router.get("/{flow_id}/versions/{version}")
def get_version(
    store: StoreDep,
    tenant: Tenant,
    flow_id: FlowId,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    return json_response(store.get_flow(tenant, flow_id, version))


@router.post("/{flow_id}/archive")
def archive_flow(store: StoreDep, tenant: Tenant, by: Actor, flow_id: FlowId) -> Response:
    """Refuse new orders on the flow; its orders keep running. PUT makes it active again."""
    store.archive_flow(tenant, flow_id, by)
    return json_response(store.get_flow(tenant, flow_id))
