"""The product catalogue, and ``POST /api/products/{name}/preview``: a product's parts from
parameters, as PNG pictures with their triangles, volume and size, so a shop can try a
personalisation before selling it.

Nothing is stored. The parameters are checked exactly as order intake checks a line, and the
parts go through the same mesh checks as production files.
"""

from __future__ import annotations

import base64
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import Tenant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.errors import Conflict, InvalidInput, NotFound, Problem
from fabflow.production.build import checked_mesh
from fabflow.production.line_check import parameter_problems
from fabflow.production.mesh import MeshCheckFailed, MeshStats
from fabflow.production.preview import render_png
from fabflow.production.products.base import ParameterError
from fabflow.production.registry import ProductClass, UnknownProduct, catalogue, get

router = APIRouter(tags=["products"], responses=ERRORS)
PREVIEW_SIZE = 320
# Building is CPU work in the server's threads: at most two at once, so previews cannot starve
# the API; the parameter schemas bound how big one part can be.
_SLOTS = threading.BoundedSemaphore(2)
WAIT_SECONDS = 30.0


@router.get("/api/products")
def products(_tenant: Tenant) -> Response:
    """Every product an order line can name, with the JSON Schema of its parameters."""
    return json_response({"products": catalogue()})


@router.post("/api/products/{name}/preview")
async def preview(
    _tenant: Tenant,
    name: Annotated[str, Path(max_length=100)],
    parameters: Annotated[dict[str, Any], Body()],
) -> Response:
    """Build the product from ``parameters`` (the JSON object an order line would carry) and
    answer each part with a base64 PNG, triangles, volume (mm³) and bounding box (mm)."""
    product = _product(name)
    parts = await run_in_threadpool(_build, product, parameters)
    return json_response({"product": name, "parts": parts})


def _product(name: str) -> ProductClass:
    try:
        return get(name)
    except UnknownProduct as exc:
        raise NotFound(str(exc)) from None


def _build(product_class: ProductClass, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    problems = parameter_problems(product_class, parameters)
    if problems:
        found = [Problem(f"/{key}" if key else "", message) for key, message in problems]
        raise InvalidInput(f"invalid parameters: {found[0].pointer}: {found[0].message}", found)
    if not _SLOTS.acquire(timeout=WAIT_SECONDS):
        raise Conflict("the server is busy with other previews: try again in a moment")
    try:
        return _parts(product_class, parameters)
    finally:
        _SLOTS.release()


def _parts(product_class: ProductClass, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    product = product_class()
    try:
        solids = product.build(product.parameters.model_validate(parameters))
        meshes = {part: checked_mesh(part, solid) for part, solid in solids.items()}
    except ParameterError as exc:
        pointer = f"/{exc.parameter}"
        raise InvalidInput(f"invalid parameters: {exc}", [Problem(pointer, exc.message)]) from None
    except MeshCheckFailed as exc:
        raise InvalidInput(f"the part cannot be made: {exc}", [Problem("", str(exc))]) from None
    return [
        _part(part, render_png(mesh, PREVIEW_SIZE), stats) for part, (mesh, stats) in meshes.items()
    ]


def _part(part: str, png: bytes, stats: MeshStats) -> dict[str, Any]:
    size = [round(hi - lo, 3) for lo, hi in zip(stats.bbox_min, stats.bbox_max, strict=True)]
    return {
        "part": part,
        "png": base64.b64encode(png).decode("ascii"),
        "triangles": stats.triangles,
        "volumeMm3": round(stats.volume_mm3, 3),
        "bbox": {"min": list(stats.bbox_min), "max": list(stats.bbox_max)},
        "sizeMm": size,
    }
