"""Tenants see only their own objects: another tenant's ids answer 404 on every route and no
list shows them; requests without a key, or with an unknown or revoked one, get 401."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fabflow.api.auth import AUTH_CACHE_SECONDS
from fabflow.store.repository import Store
from tests.integration.api.conftest import client_for, rest_flow

ORDER = {"externalId": "A-1", "flowId": "shop", "customer": {"name": "Ada Lovelace"}}


async def _acme_objects(acme: httpx.AsyncClient) -> str:
    assert (
        await acme.post("/api/flows", json=rest_flow("http://127.0.0.1:9/x"))
    ).status_code == 201
    created = await acme.post("/api/orders", json=ORDER)
    assert created.status_code == 201
    return str(created.json()["id"])


def _routes_on(order_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    flow = rest_flow("http://127.0.0.1:9/x")
    return [
        ("GET", "/api/flows/shop", None),
        ("PUT", "/api/flows/shop", flow),
        ("GET", "/api/flows/shop/versions", None),
        ("GET", "/api/flows/shop/versions/1", None),
        ("POST", "/api/flows/shop/archive", None),
        ("GET", f"/api/orders/{order_id}", None),
        ("GET", f"/api/orders/{order_id}/events", None),
        ("POST", f"/api/orders/{order_id}/retry", None),
        ("POST", f"/api/orders/{order_id}/rerun", {"stepDefinitionId": "notify"}),
        ("POST", f"/api/orders/{order_id}/cancel", None),
        ("GET", f"/api/orders/{order_id}/files/1-nameplate.stl", None),
        ("GET", f"/api/orders/{order_id}/files/1-nameplate.stl/preview", None),
    ]


async def test_another_tenants_objects_answer_404_everywhere(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    order_id = await _acme_objects(acme)
    for method, path, body in _routes_on(order_id):
        got = await globex.request(method, path, json=body)
        assert got.status_code == 404, (method, path, got.text)
        assert got.json()["code"] == "not_found", (method, path)
    # Nothing globex tried changed acme's objects.
    order = (await acme.get(f"/api/orders/{order_id}")).json()
    assert order["execution"]["state"] == "pending"
    assert (await acme.get("/api/flows/shop")).json()["archived"] is False


async def test_no_list_shows_another_tenants_objects(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    await _acme_objects(acme)
    assert (await globex.get("/api/flows")).json()["flows"] == []
    assert (await globex.get("/api/flows", params={"archived": "true"})).json()["flows"] == []
    listed = (await globex.get("/api/orders", params={"q": "ada"})).json()
    assert listed["orders"] == [] and sum(listed["counts"].values()) == 0
    metrics = (await globex.get("/metrics")).text
    assert 'fabflow_orders{state="pending"} 0.0' in metrics
    assert 'fabflow_orders{state="pending"} 1.0' in (await acme.get("/metrics")).text


async def test_another_tenants_flow_and_external_id_are_unknown_at_intake(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    acme_order = await _acme_objects(acme)
    refused = await globex.post("/api/orders", json=ORDER)
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["pointer"] == "/flowId"
    # With its own flow of the same id, globex's "A-1" is a new order, not acme's.
    assert (
        await globex.post("/api/flows", json=rest_flow("http://127.0.0.1:9/x"))
    ).status_code == 201
    mine = await globex.post("/api/orders", json=ORDER)
    assert mine.status_code == 201 and mine.json()["id"] != acme_order


# The callback's token is its credential (tests/integration/api/test_api_callbacks.py); a
# signed file link's signature is its own (tests/integration/api/test_api_file_links.py).
KEYLESS = ("/api/health", "/api/callbacks/{token}", "/api/files/{order_id}/{name}")


async def test_every_route_but_health_and_callbacks_needs_a_key(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert set(KEYLESS) <= set(paths)
    async with client_for(app, None) as anonymous:
        assert (await anonymous.get("/api/health")).status_code == 200
        for path, operations in paths.items():
            if path in KEYLESS:
                continue
            url = path.replace("{order_id}", "ord_x").replace("{flow_id}", "f")
            url = url.replace("{name}", "n").replace("{version}", "1")
            for method in operations:
                got = await anonymous.request(method.upper(), url)
                assert got.status_code == 401, (method, path, got.text)
                assert got.json()["code"] == "unauthorized"
                assert got.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer ffk_not-a-key", "Basic YTpi", "Bearer " + "x" * 300])
async def test_unknown_keys_get_401(app: FastAPI, header: str) -> None:
    async with client_for(app, None) as client:
        got = await client.get("/api/orders", headers={"Authorization": header})
    assert got.status_code == 401
    assert set(got.json()) == {"code", "message", "problems"}


async def test_a_revoked_key_gets_401(app: FastAPI, api_store: Store) -> None:
    key_id, secret = api_store.create_api_key("acme", "to revoke")
    async with client_for(app, secret) as client:
        assert (await client.get("/api/orders")).status_code == 200
        api_store.revoke_api_key(key_id)
        # Valid keys are remembered for AUTH_CACHE_SECONDS, no longer.
        await asyncio.sleep(AUTH_CACHE_SECONDS + 0.1)
        got = await client.get("/api/orders")
    assert got.status_code == 401
    assert got.json()["message"] == "the API key is unknown or revoked"
