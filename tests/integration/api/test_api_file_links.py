"""Signed file links: a file record's ``url`` downloads over real HTTP without an API key until
it expires; any change to it, or its expiry, answers 403; the API-key route stays."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from fabflow.store.repository import Store
from fabflow.tokens import file_link_signature, make_callback_token
from tests.integration.api.conftest import run_until_ended

ORDER: dict[str, Any] = {
    "externalId": "LINK-1",
    "flowId": "files",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": "Ada"}}],
}
FLOW = {
    "id": "files",
    "name": "Files",
    "steps": [
        {
            "stepDefinitionId": "generate",
            "type": "generate-production-files",
            "successStatus": "Files ready",
            "options": {"fileFormat": "stl"},
        }
    ],
}


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real HTTP server on 127.0.0.1; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _record(acme: httpx.AsyncClient, store: Store) -> tuple[str, dict[str, Any]]:
    assert (await acme.post("/api/flows", json=FLOW)).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    done = await run_until_ended(store, acme, order_id, only=["generate-production-files"])
    assert done["execution"]["state"] == "succeeded", done["execution"]
    return order_id, done["files"][0]


def _with(url: str, **query: str) -> str:
    parts = urlsplit(url)
    values = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    return parts._replace(query=urlencode(values)).geturl()


async def test_a_file_link_downloads_without_a_key_over_http(
    acme: httpx.AsyncClient, api_store: Store, served: str
) -> None:
    order_id, record = await _record(acme, api_store)
    url = record["url"]
    assert url.startswith(f"{api_store.settings.public_url}/api/files/{order_id}/")
    parts = urlsplit(url)
    async with httpx.AsyncClient(base_url=served) as anonymous:  # no Authorization at all
        got = await anonymous.get(f"{parts.path}?{parts.query}")
        assert got.status_code == 200, got.text
        assert hashlib.sha256(got.content).hexdigest() == record["sha256"]
        assert got.headers["content-type"] == record["contentType"]
        assert got.headers["content-disposition"].startswith(
            f'attachment; filename="{record["name"]}"'
        )
        part = await anonymous.get(f"{parts.path}?{parts.query}", headers={"Range": "bytes=0-79"})
        assert part.status_code == 206 and part.content == got.content[:80]

        # The key route is unchanged: it needs the key, and answers the same bytes with it.
        key_path = f"/api/orders/{order_id}/files/{record['name']}"
        assert (await anonymous.get(key_path)).status_code == 401
        with_key = await anonymous.get(key_path, headers=acme.headers)
        assert with_key.status_code == 200 and with_key.content == got.content


@pytest.mark.parametrize("part", ["tenant", "order", "name", "expires", "signature"])
async def test_a_changed_link_is_refused(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, part: str
) -> None:
    order_id, record = await _record(acme, api_store)
    url = record["url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    globex_tenant = api_store.ensure_tenant("globex")  # another tenant's id
    changed = {
        "tenant": _with(url, tenant=globex_tenant),
        "order": url.replace(order_id, order_id[:-1] + ("0" if order_id[-1] != "0" else "1")),
        "name": url.replace(record["name"], "other.stl"),
        "expires": _with(url, expires=str(int(query["expires"]) + 1)),
        "signature": _with(url, signature=query["signature"][:-2] + "AA"),
    }[part]
    assert changed != url
    async with httpx.AsyncClient(transport=acme._transport, base_url="http://x") as anonymous:
        refused = await anonymous.get(changed)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "link_invalid"
        assert "sha256" not in refused.text
        assert (await anonymous.get(url)).status_code == 200  # the real one still works


async def test_an_expired_link_is_refused_and_says_so(
    acme: httpx.AsyncClient, api_store: Store
) -> None:
    order_id, record = await _record(acme, api_store)
    query = {k: v[0] for k, v in parse_qs(urlsplit(record["url"]).query).items()}
    secret = api_store.file_link_secret()
    file_id = f"{order_id}/{record['name']}"
    past = int(time.time()) - 1
    expired = _with(
        record["url"],
        expires=str(past),
        signature=file_link_signature(secret, query["tenant"], file_id, past),
    )
    async with httpx.AsyncClient(transport=acme._transport, base_url="http://x") as anonymous:
        refused = await anonymous.get(expired)
        assert refused.status_code == 403 and refused.json()["code"] == "link_expired"
        # A callback token's MAC, under the same key, is no file link's signature.
        token = make_callback_token(secret, file_id)
        forged = _with(record["url"], signature=token.rpartition(".")[2])
        assert (await anonymous.get(forged)).json()["code"] == "link_invalid"


async def test_a_link_expires_after_the_configured_seconds(
    acme: httpx.AsyncClient, api_store: Store, app: FastAPI
) -> None:
    short = api_store.settings.with_(file_link_seconds=1)
    api_store.settings = short
    app.state.settings = short
    _, record = await _record(acme, api_store)
    expires = int(parse_qs(urlsplit(record["url"]).query)["expires"][0])
    assert expires <= time.time() + 1
    await asyncio.sleep(max(0.0, expires - time.time()) + 1.1)
    async with httpx.AsyncClient(transport=acme._transport, base_url="http://x") as anonymous:
        refused = await anonymous.get(record["url"])
        assert refused.status_code == 403 and refused.json()["code"] == "link_expired"
