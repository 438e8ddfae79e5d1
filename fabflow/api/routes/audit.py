"""The tenant's audit trail: flows saved and archived, API keys created and revoked, bulk
actions, each with who did it and when (actions on one order are on its events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.store.audit import MAX_PAGE, audit_trail

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=ERRORS)


@router.get("")
def list_audit(
    store: StoreDep,
    tenant: Tenant,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="A page's nextCursor.")
    ] = None,
) -> Response:
    """The tenant's audit events, newest first: ``kind`` (flow_saved, flow_restored,
    flow_archived, key_created, key_revoked, secret_created, secret_replaced,
    secret_deleted, bulk_retry, bulk_cancel), ``subject``, ``data``,
    ``by`` and ``at``; ``nextCursor`` pages back."""
    return json_response(audit_trail(store, tenant, before=before, limit=limit))
