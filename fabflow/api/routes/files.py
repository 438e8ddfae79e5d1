"""Production files: streamed downloads with checksums as ETags, and their PNG previews.

Two routes give a file: ``/api/orders/{id}/files/{name}`` with an API key, and the signed link
of the file record's ``url``, ``/api/files/{id}/{name}?tenant=&expires=&signature=``, which
needs no key until it expires (``fabflow.tokens``; ``FABFLOW_FILE_LINK_SECONDS``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from fabflow.api.auth import StoreDep, Tenant
from fabflow.api.errors import Forbidden
from fabflow.api.schemas import ERRORS
from fabflow.errors import NotFound
from fabflow.files import LocalFileStore
from fabflow.store import orders
from fabflow.tokens import file_link_valid

router = APIRouter(prefix="/api/orders", tags=["files"], responses=ERRORS)
links_router = APIRouter(prefix="/api/files", tags=["files"], responses=ERRORS)


class LinkExpired(Forbidden):
    """A signed file link past its ``expires``."""

    code = "link_expired"


class LinkInvalid(Forbidden):
    """A file link whose signature does not match its tenant, file and expiry."""

    code = "link_invalid"


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
    all_headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate", **headers}
    local = files.local_path(key)
    if local is not None:  # Range requests answered (a receiver may resume a big download)
        all_headers.pop("Content-Length", None)  # the file's own size, from stat
        return FileResponse(local, headers=all_headers, media_type=content_type)
    chunks: Iterator[bytes] = files.iter_bytes(key)
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
    return _file(request, record, name, if_none_match)


def _file(
    request: Request, record: dict[str, Any], name: str, if_none_match: str | None
) -> Response:
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


_LINK: dict[int | str, dict[str, Any]] = {
    **_FILE,
    "403": {"description": "The link expired (`link_expired`) or is not valid (`link_invalid`)"},
}


@links_router.get("/{order_id}/{name}", responses=_LINK)
async def download_by_link(
    request: Request,
    order_id: OrderId,
    name: FileName,
    tenant: Annotated[str, Query(max_length=40)],
    expires: Annotated[int, Query(ge=0)],
    signature: Annotated[str, Query(max_length=100)],
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The file of a signed link (a file record's ``url``): no API key, until ``expires``.

    403 ``link_invalid`` when the tenant, order, name, expiry or signature was changed;
    403 ``link_expired`` when it is past its time. Range requests are answered."""
    store = request.app.state.store
    secret = await run_in_threadpool(store.file_link_secret)
    if not file_link_valid(secret, tenant, f"{order_id}/{name}", expires, signature):
        raise LinkInvalid("this file link is not valid: it was changed or made by another key")
    if expires < time.time():
        raise LinkExpired("this file link expired; ask for the order again for a fresh one")
    record = await run_in_threadpool(_record, store, tenant, order_id, name)
    return _file(request, record, name, if_none_match)
