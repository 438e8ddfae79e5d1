"""Production files: streamed downloads with checksums as ETags, and their PNG previews."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Request
from starlette.responses import Response, StreamingResponse

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.schemas import ERRORS
from fabflow.errors import NotFound
from fabflow.files import LocalFileStore
from fabflow.store import orders

router = APIRouter(prefix="/api/orders", tags=["files"], responses=ERRORS)

OrderId = Annotated[str, Path(max_length=40)]
FileName = Annotated[str, Path(max_length=200, description="A name from the order's files.")]
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")

_FILE: dict[int | str, dict[str, Any]] = {
    "200": {"description": "The file", "content": {"application/octet-stream": {}}}
}
_PNG: dict[int | str, dict[str, Any]] = {
    "200": {"description": "A PNG preview", "content": {"image/png": {}}}
}


def _record(store: StoreDep, tenant: str, order_id: str, name: str) -> dict[str, Any]:
    row = orders.get_order_row(store, tenant, order_id)
    for record in row["files"] or []:
        if record.get("name") == name:
            return dict(record)
    raise NotFound(f"order {order_id} has no file {name!r}")


def disposition(name: str) -> str:
    """``attachment`` with an ASCII-safe filename and the exact one in RFC 5987 form."""
    ascii_name = _UNSAFE.sub("_", name).strip() or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _stream(
    request: Request, key: str, etag: str, content_type: str, headers: dict[str, str]
) -> Response:
    files = LocalFileStore(request.app.state.settings.files_dir)
    if not files.exists(key):
        raise NotFound("the file is listed but missing from the file store")
    chunks: Iterator[bytes] = files.iter_bytes(key)
    all_headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate", **headers}
    return StreamingResponse(chunks, media_type=content_type, headers=all_headers)


@router.get("/{order_id}/files/{name}", responses=_FILE)
def download(
    request: Request,
    store: StoreDep,
    tenant: Tenant,
    order_id: OrderId,
    name: FileName,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The file, streamed; ``ETag`` is its sha256, so ``If-None-Match`` answers 304."""
    record = _record(store, tenant, order_id, name)
    etag = f'"{record["sha256"]}"'
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    content_type = record.get("contentType") or "application/octet-stream"
    headers = {"Content-Disposition": disposition(name)}
    if record.get("bytes") is not None:
        headers["Content-Length"] = str(record["bytes"])
    return _stream(request, record["key"], etag, content_type, headers)


@router.get("/{order_id}/files/{name}/preview", responses=_PNG)
def preview(
    request: Request,
    store: StoreDep,
    tenant: Tenant,
    order_id: OrderId,
    name: FileName,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """A PNG picture of the file's part (inline, for the web UI)."""
    record = _record(store, tenant, order_id, name)
    if not record.get("preview"):
        raise NotFound(f"file {name!r} has no preview")
    etag = f'"{record["sha256"]}-png"'
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return _stream(request, record["preview"], etag, "image/png", {})
