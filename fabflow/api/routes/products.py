"""The product catalogue, and ``POST /api/products/{name}/preview``: a product's parts from
parameters, as PNG pictures with their triangles, volume and size, so a shop can try a
personalisation before selling it; ``.../preview/{part}.stl`` answers one part as binary STL for
the web UI's 3D view.

Nothing is stored. The parameters are checked exactly as order intake checks a line, and the
parts go through the same mesh checks as production files.
"""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.api.work_gate import TooBusy, WorkGate, too_busy_response
from fabflow.errors import InvalidInput, NotFound, Problem, RenderFailed
from fabflow.files import LocalFileStore
from fabflow.production.build import checked_mesh
from fabflow.production.line_check import parameter_problems
from fabflow.production.mesh import MeshCheckFailed, MeshStats, TriMesh
from fabflow.production.preview import render_png
from fabflow.production.products.base import ParameterError
from fabflow.production.registry import ProductClass, UnknownProduct, catalogue, get
from fabflow.production.registry import products as builtin_products
from fabflow.production.scad.bundle import bundle_from_upload
from fabflow.production.scad.product import ModelProduct, model_of
from fabflow.production.scad.render import render_model
from fabflow.production.scad.stored import StoredModel, local_model
from fabflow.production.writers import write_stl_binary
from fabflow.settings import Settings
from fabflow.store import products as stored
from fabflow.store.repository import Store

router = APIRouter(tags=["products"], responses=ERRORS)
PREVIEW_SIZE = 320
# Building is CPU work in the server's threads, behind the app's WorkGate (at most two at
# once, a tenant's share, waiting on the event loop); the parameter schemas bound how big one
# built-in part can be, and a model's preview is stopped after this long.
PREVIEW_RENDER_S = 30.0


@router.get("/api/products")
def products(tenant: Tenant, store: StoreDep) -> Response:
    """Every product an order line can name, with the JSON Schema of its parameters: the
    built-in ones (``kind`` ``builtin``) and the tenant's own (``kind`` ``openscad``)."""
    builtin = [{**product, "kind": "builtin"} for product in catalogue()]
    own = [p.resource() for p in stored.list_products(store, tenant)]
    return json_response({"products": builtin + own})


Name = Annotated[str, Path(max_length=100, description="The product's name.")]
Files = Annotated[
    list[UploadFile],
    File(description="The model: one .scad file, a zip of its folder, or its files with paths."),
]
Main = Annotated[str | None, Form(max_length=200, description="The main .scad file's path.")]
Title = Annotated[str | None, Form(max_length=200, description="A title for people.")]


@router.post("/api/products", status_code=201)
async def add_product(
    tenant: Tenant,
    store: StoreDep,
    request: Request,
    name: Annotated[str, Form(max_length=100, description="The name order lines use.")],
    files: Files,
    main: Main = None,
    title: Title = None,
) -> Response:
    """Add a product made from an OpenSCAD model with Customizer annotations. It is refused
    whole (422, every problem with its file and line) when its parameters cannot be read, it
    reads a file outside its folder, or it does not render with its defaults."""
    try:
        found = await _upload(request, tenant, store, name, files, main, title, exists=False)
    except TooBusy as exc:
        return too_busy_response(exc)
    return json_response(found, 201, {"Location": f"/api/products/{name}"})


@router.put("/api/products/{name}")
async def add_version(
    tenant: Tenant,
    store: StoreDep,
    request: Request,
    name: Name,
    files: Files,
    main: Main = None,
    title: Title = None,
) -> Response:
    """Add a new version of the tenant's product; orders accepted before keep theirs."""
    try:
        found = await _upload(request, tenant, store, name, files, main, title, exists=True)
    except TooBusy as exc:
        return too_busy_response(exc)
    return json_response(found)


@router.get("/api/products/{name}")
def product(
    tenant: Tenant,
    store: StoreDep,
    name: Name,
    version: Annotated[int | None, Query(ge=1, description="A version (default: current).")] = None,
) -> Response:
    """One product: its parameters' JSON Schema, parts and files (and version, if the
    tenant's own)."""
    if version is None and name in catalogue_names():
        return json_response(
            next(p for p in catalogue() if p["name"] == name) | {"kind": "builtin"}
        )
    found = stored.product_version(store, tenant, name, version)
    return json_response(
        {**found.resource(), "versions": stored.product_versions(store, tenant, name)}
    )


async def _upload(
    request: Request,
    tenant: str,
    store: Store,
    name: str,
    files: list[UploadFile],
    main: str | None,
    title: str | None,
    *,
    exists: bool,
) -> dict[str, Any]:
    items = [(upload.filename or "model.scad", await upload.read()) for upload in files]
    settings: Settings = request.app.state.settings
    file_store = LocalFileStore(settings.files_dir)

    def add() -> dict[str, Any]:
        bundle = bundle_from_upload(items, main)
        version, renderers = stored.add_product(
            store, file_store, tenant, name, bundle, title=title, exists=exists
        )
        return {**version.resource(), "renderers": renderers, "skipped": list(bundle.skipped)}

    gate: WorkGate = request.app.state.work_gate
    async with gate.slot(tenant):
        return await run_in_threadpool(add)


@router.post("/api/products/{name}/preview")
async def preview(
    request: Request,
    tenant: Tenant,
    store: StoreDep,
    name: Annotated[str, Path(max_length=100)],
    parameters: Annotated[dict[str, Any], Body()],
) -> Response:
    """Build the product from ``parameters`` (the JSON object an order line would carry) and
    answer each part with a base64 PNG, triangles, volume (mm³) and bounding box (mm). A
    tenant's own product renders its current version (and says which renderer made each part)."""
    gate: WorkGate = request.app.state.work_gate
    try:
        if name not in catalogue_names():
            found = stored.product_version(store, tenant, name)
            settings: Settings = request.app.state.settings
            async with gate.slot(tenant):
                parts = await run_in_threadpool(_build_model, settings, found, parameters)
            return json_response({"product": name, "version": found.version, "parts": parts})
        product = _product(name)
        async with gate.slot(tenant):
            parts = await run_in_threadpool(_build, product, parameters)
    except TooBusy as exc:
        return too_busy_response(exc)
    return json_response({"product": name, "parts": parts})


_STL: dict[int | str, dict[str, Any]] = {
    "200": {"description": "The part as binary STL (millimetres)", "content": {"model/stl": {}}}
}


@router.post("/api/products/{name}/preview/{part}.stl", responses=_STL)
async def preview_stl(
    request: Request,
    tenant: Tenant,
    store: StoreDep,
    name: Annotated[str, Path(max_length=100)],
    part: Annotated[str, Path(max_length=100, description="A part the preview answered.")],
    parameters: Annotated[dict[str, Any], Body()],
) -> Response:
    """One part of the preview's build as binary STL, for the web UI's 3D view: the same
    checks, the same slots and the same mesh a production file of these parameters has."""
    gate: WorkGate = request.app.state.work_gate
    settings: Settings = request.app.state.settings
    try:
        async with gate.slot(tenant):
            if name in catalogue_names():
                mesh = await run_in_threadpool(_builtin_mesh, _product(name), parameters, part)
            else:
                found = stored.product_version(store, tenant, name)
                mesh = await run_in_threadpool(_model_stl, settings, found, parameters, part)
    except TooBusy as exc:
        return too_busy_response(exc)
    out = io.BytesIO()
    write_stl_binary(mesh, out, part)
    return Response(out.getvalue(), media_type="model/stl", headers={"Cache-Control": "no-store"})


def _builtin_mesh(product_class: ProductClass, parameters: dict[str, Any], part: str) -> TriMesh:
    _check(product_class, parameters)
    meshes = _meshes(product_class, parameters)
    if part not in meshes:
        raise NotFound(f"product {product_class.name!r} has no part {part!r}")
    return meshes[part][0]


def _model_stl(
    settings: Settings, found: stored.ProductVersion, parameters: dict[str, Any], part: str
) -> TriMesh:
    model, local = _model(settings, found, parameters)
    if part not in local.parts:
        raise NotFound(f"product {found.name!r} has no part {part!r}")
    return _model_mesh(settings, local, model, parameters, part)[0]


def _build_model(
    settings: Settings, found: stored.ProductVersion, parameters: dict[str, Any]
) -> list[dict[str, Any]]:
    model, local = _model(settings, found, parameters)
    return [_model_part(settings, local, model, parameters, part) for part in local.parts]


def _model(
    settings: Settings, found: stored.ProductVersion, parameters: dict[str, Any]
) -> tuple[ModelProduct, StoredModel]:
    """The model with ``parameters`` checked, and its files on this machine."""
    model = model_of(found.main, found.source)
    problems = model.problems(parameters)
    if problems:
        first = problems[0]
        raise InvalidInput(f"invalid parameters: {first.pointer}: {first.message}", problems)
    files = LocalFileStore(settings.files_dir)
    local = local_model(
        files, settings.product_cache_dir, found.tenant_id, found.name, found.version
    )
    return model, local


def _model_part(
    settings: Settings,
    local: StoredModel,
    model: ModelProduct,
    parameters: dict[str, Any],
    part: str,
) -> dict[str, Any]:
    mesh, stats, renderer = _model_mesh(settings, local, model, parameters, part)
    return {**_part(part, render_png(mesh, PREVIEW_SIZE), stats), "renderer": renderer}


def _model_mesh(
    settings: Settings,
    local: StoredModel,
    model: ModelProduct,
    parameters: dict[str, Any],
    part: str,
) -> tuple[TriMesh, MeshStats, str]:
    try:
        rendered = render_model(
            local.folder,
            local.main,
            model.part_values(parameters, part),
            mode=settings.scad_renderer,  # type: ignore[arg-type]  # checked by Settings
            timeout=PREVIEW_RENDER_S,
            memory_mb=settings.scad_memory_mb,
        )
        mesh, stats = checked_mesh(part, rendered.solid)
    except (RenderFailed, MeshCheckFailed) as exc:
        message = exc.message if isinstance(exc, RenderFailed) else str(exc)
        raise InvalidInput(f"the part cannot be made: {message}", [Problem("", message)]) from None
    return mesh, stats, rendered.renderer


def catalogue_names() -> set[str]:
    return set(builtin_products())


def _product(name: str) -> ProductClass:
    try:
        return get(name)
    except UnknownProduct as exc:
        raise NotFound(str(exc)) from None


def _build(product_class: ProductClass, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    _check(product_class, parameters)
    return _parts(product_class, parameters)


def _check(product_class: ProductClass, parameters: dict[str, Any]) -> None:
    problems = parameter_problems(product_class, parameters)
    if problems:
        found = [Problem(f"/{key}" if key else "", message) for key, message in problems]
        raise InvalidInput(f"invalid parameters: {found[0].pointer}: {found[0].message}", found)


def _parts(product_class: ProductClass, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    meshes = _meshes(product_class, parameters)
    return [
        _part(part, render_png(mesh, PREVIEW_SIZE), stats) for part, (mesh, stats) in meshes.items()
    ]


def _meshes(
    product_class: ProductClass, parameters: dict[str, Any]
) -> dict[str, tuple[TriMesh, MeshStats]]:
    product = product_class()
    try:
        solids = product.build(product.parameters.model_validate(parameters))
        return {part: checked_mesh(part, solid) for part, solid in solids.items()}
    except ParameterError as exc:
        pointer = f"/{exc.parameter}"
        raise InvalidInput(f"invalid parameters: {exc}", [Problem(pointer, exc.message)]) from None
    except MeshCheckFailed as exc:
        raise InvalidInput(f"the part cannot be made: {exc}", [Problem("", str(exc))]) from None


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
