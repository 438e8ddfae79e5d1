"""What is not an order, a flow or a product: health, metrics, the demo echo."""

from __future__ import annotations

import os
import socket
from typing import Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from fabflow.api import metrics
from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.errors import body, error_response
from fabflow.api.schemas import ERRORS, ErrorBody, json_response
from fabflow.store import db

router = APIRouter(responses=ERRORS)
NODE = f"{socket.gethostname()}:{os.getpid()}"  # this process's health probe row
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/api/health",
    tags=["meta"],
    responses={
        503: {"model": ErrorBody, "description": "The database is unreachable or refuses writes"}
    },
)
def health(store: StoreDep) -> Response:
    """Does the database answer and take writes? No key needed (for load balancers and
    probes). Each call writes one small row, so a read-only database, a full disk or a server
    in recovery answers 503, not ok."""
    try:
        with store.write() as conn:
            db.write_probe(conn, NODE)
    except Exception as exc:  # any failure of the driver means "not healthy"
        return error_response(503, body("unhealthy", f"database: {exc}"))
    return json_response({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    tags=["meta"],
    responses={200: {"content": {METRICS_TYPE: {}}, "description": "Prometheus text"}},
)
def prometheus(store: StoreDep, tenant: Tenant) -> Response:
    """The key's tenant's orders by state, attempts by outcome and step type, step durations,
    and queue depth, read from the database at each scrape."""
    return Response(metrics.render(store, tenant), media_type=METRICS_TYPE)


demo_router = APIRouter(tags=["demo"])


@demo_router.post("/api/demo/echo")
def echo(request: Request, payload: Any = Body(None)) -> Response:  # noqa: B008
    """Demo only (``fabflow demo``): answers what it was sent, so the demo's REST step has a
    receiver on a machine with no network."""
    headers = {"Idempotency-Key": request.headers.get("idempotency-key", "")}
    return json_response({"received": payload, "headers": headers})
