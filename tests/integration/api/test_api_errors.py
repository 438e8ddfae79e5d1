"""One error body everywhere, statuses a client can rely on, and the request limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from fabflow.settings import Settings
from fabflow.store.repository import Store
from tests.integration.api.conftest import client_for, rest_flow

ERROR_KEYS = {"code", "message", "problems"}


async def test_an_invalid_order_lists_every_problem_with_pointers(
    acme: httpx.AsyncClient,
) -> None:
    order = {
        "flowId": "nowhere",
        "customer": {"name": "x" * 201},
        "lines": [{"id": "1", "product": "nameplat", "parameters": {}}, {"id": "1"}],
        "colour": "red",
    }
    got = await acme.post("/api/orders", json=order)
    assert got.status_code == 422
    body = got.json()
    assert set(body) == ERROR_KEYS and body["code"] == "invalid_order"
    pointers = {p["pointer"] for p in body["problems"]}
    assert {"/flowId", "/customer/name", "/lines/1/product", "/colour"} <= pointers


async def test_an_invalid_flow_is_refused_with_every_problem(acme: httpx.AsyncClient) -> None:
    flow = rest_flow("not a url", onSuccess="eror")
    got = await acme.post("/api/flows", json=flow)
    assert got.status_code == 422 and got.json()["code"] == "invalid_flow"
    pointers = [p["pointer"] for p in got.json()["problems"]]
    assert "/steps/0/options/uri" in pointers and "/steps/0/onSuccess" in pointers

    no_id = await acme.post("/api/flows", json=flow["steps"])
    assert no_id.status_code == 422 and no_id.json()["problems"][0]["pointer"] == "query.id"
    bad_id = await acme.post("/api/flows", json={**flow, "id": "../etc"})
    assert bad_id.status_code == 422 and bad_id.json()["problems"][0]["pointer"] == "/id"


async def test_the_spec_list_form_is_accepted_with_an_id(acme: httpx.AsyncClient) -> None:
    steps = rest_flow("https://example.com/orders")["steps"]
    got = await acme.post("/api/flows", params={"id": "listed"}, json=steps)
    assert got.status_code == 201 and got.json()["name"] == "listed"


async def test_validate_reports_problems_and_the_graph_without_saving(
    acme: httpx.AsyncClient,
) -> None:
    steps = [
        {**rest_flow("https://example.com")["steps"][0], "onError": "alert"},
        {**rest_flow("https://example.com")["steps"][0], "stepDefinitionId": "alert"},
        {**rest_flow("https://example.com")["steps"][0], "stepDefinitionId": "orphan"},
    ]
    got = await acme.post("/api/flows/validate", json=steps)
    assert got.status_code == 200
    body = got.json()
    assert body["valid"] is True
    assert body["problems"][0]["severity"] == "warning"  # orphan is never reached
    assert {"from": "notify", "to": "alert", "kind": "error"} in body["graph"]["edges"]
    assert (await acme.get("/api/flows")).json()["flows"] == []

    broken = await acme.post("/api/flows/validate", content=b'[{"type": ')
    assert broken.status_code == 200 and broken.json()["valid"] is False
    assert "line 1" in broken.json()["problems"][0]["message"]


async def test_malformed_json_is_400_and_bad_parameters_422(acme: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    got = await acme.post("/api/orders", content=b"{oops", headers=headers)
    assert got.status_code == 400 and set(got.json()) == ERROR_KEYS
    bad = await acme.get("/api/orders", params={"limit": 0, "createdAfter": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["pointer"] == "query.limit"
    when = await acme.get("/api/orders", params={"createdAfter": "yesterday"})
    assert when.status_code == 422
    assert when.json()["problems"][0]["pointer"] == "query.createdAfter"


async def test_unknown_routes_and_methods_answer_the_error_body(acme: httpx.AsyncClient) -> None:
    missing = await acme.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = await acme.delete("/api/orders")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1024):
        yield b" " * 1024


async def test_bodies_over_the_limit_get_413(
    api_settings: Settings, api_store: Store, keys: dict[str, str]
) -> None:
    from fabflow.api import create_app

    app = create_app(api_settings.with_(max_body_bytes=4096), api_store)
    async with client_for(app, keys["acme"]) as client:
        declared = await client.post("/api/orders", content=b" " * 5000)
        assert declared.status_code == 413 and declared.json()["code"] == "payload_too_large"
        streamed = await client.post("/api/flows/validate", content=_chunks(8192))
        assert streamed.status_code == 413
        chunked_order = await client.post("/api/orders", content=_chunks(8192))
        assert chunked_order.status_code == 413
        small = await client.post("/api/flows/validate", content=b"[]")
        assert small.status_code == 200


async def test_order_lists_paginate_with_a_cursor(acme: httpx.AsyncClient) -> None:
    assert (await acme.post("/api/flows", json=rest_flow("https://example.com"))).status_code == 201
    ids = []
    for n in range(5):
        order = {"externalId": f"P-{n}", "flowId": "shop", "customer": {"name": f"C{n}"}}
        ids.append((await acme.post("/api/orders", json=order)).json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await acme.get("/api/orders", params=params)).json()
        seen += [o["id"] for o in page["orders"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    found = (await acme.get("/api/orders", params={"q": "p-3"})).json()["orders"]
    assert [o["externalId"] for o in found] == ["P-3"]
    later = (await acme.get("/api/orders", params={"createdAfter": "2999-01-01"})).json()
    assert later["orders"] == []


async def test_health_products_and_metrics(app: FastAPI, acme: httpx.AsyncClient) -> None:
    async with client_for(app, None) as anonymous:
        health = await anonymous.get("/api/health")
    assert health.json() == {"status": "ok", "database": "ok"}
    products = (await acme.get("/api/products")).json()["products"]
    nameplate = next(p for p in products if p["name"] == "nameplate")
    assert "text" in nameplate["parametersSchema"]["properties"]
    metrics = await acme.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "fabflow_queue_depth" in metrics.text


async def test_the_openapi_document_names_the_bearer_scheme(acme: httpx.AsyncClient) -> None:
    doc = (await acme.get("/api/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert "OrderInput" in doc["components"]["schemas"]
    assert (await acme.get("/api/docs")).status_code == 200


async def test_the_api_docs_page_needs_no_internet(app: FastAPI) -> None:
    """Swagger UI's files come from fabflow itself, never from a CDN."""
    async with client_for(app, None) as anonymous:
        page = await anonymous.get("/api/docs")
        assert page.status_code == 200
        assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/api/docs/assets/{asset}" in page.text
            served = await anonymous.get(f"/api/docs/assets/{asset}")
            assert served.status_code == 200 and len(served.content) > 10_000
