"""The whole life of an order through the real app on a real store: a flow is created, orders
arrive, a worker runs them, the shop follows them, downloads files, retries and cancels."""

from __future__ import annotations

import hashlib
import importlib.util
from typing import Any

import httpx
import pytest

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, rest_flow, run_until_ended

ORDER: dict[str, Any] = {
    "externalId": "SHOP-1001",
    "flowId": "shop",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "quantity": 2, "parameters": {"text": "Ada"}}],
}


async def test_an_order_runs_to_success_and_is_followed(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    created = await acme.post("/api/flows", json=rest_flow(receiver.url))
    assert created.status_code == 201, created.text
    assert created.json()["currentVersion"] == 1

    first = await acme.post("/api/orders", json=ORDER)
    assert first.status_code == 201, first.text
    order = first.json()
    assert first.headers["location"] == f"/api/orders/{order['id']}"
    assert order["execution"]["state"] == "pending" and order["status"] == "Created"

    again = await acme.post("/api/orders", json=ORDER)
    assert again.status_code == 200 and again.json()["id"] == order["id"]

    done = await run_until_ended(api_store, acme, order["id"])
    assert done["execution"]["state"] == "succeeded"
    assert done["status"] == "Sent"
    assert [h["status"] for h in done["statusHistory"]] == ["Sent"]
    assert receiver.received[0]["id"] == order["id"]  # the step posted the order resource

    events = (await acme.get(f"/api/orders/{order['id']}/events")).json()["events"]
    assert events[0]["kind"] == "order_created"
    assert events[-1]["data"]["executionState"] == "succeeded"

    listed = (await acme.get("/api/orders", params={"state": "succeeded"})).json()
    assert [o["id"] for o in listed["orders"]] == [order["id"]]
    assert listed["counts"]["succeeded"] == 1 and listed["nextCursor"] is None


async def test_a_failed_order_is_retried_after_the_receiver_recovers(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, retry={"maxAttempts": 1})
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    receiver.fail = 1
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]

    failed = await run_until_ended(api_store, acme, order_id)
    assert failed["execution"]["state"] == "failed"
    attempt = failed["execution"]["attempts"][0]
    assert attempt["outcome"] == "error" and "500" in attempt["error"]["message"]

    retried = await acme.post(f"/api/orders/{order_id}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["execution"]["state"] == "running"
    again = await acme.post(f"/api/orders/{order_id}/retry")
    assert again.status_code == 409 and again.json()["code"] == "conflict"

    done = await run_until_ended(api_store, acme, order_id)
    assert done["execution"]["state"] == "succeeded"
    assert [a["outcome"] for a in done["execution"]["attempts"]] == ["error", "success"]
    assert len(receiver.received) == 2

    metrics = (await acme.get("/metrics")).text
    labels = 'step_type="consume-rest-api"'
    assert f'fabflow_attempts_total{{outcome="error",{labels}}} 1.0' in metrics
    assert f'fabflow_attempts_total{{outcome="success",{labels}}} 1.0' in metrics
    assert f"fabflow_step_duration_seconds_count{{{labels}}} 2.0" in metrics
    assert 'fabflow_orders{state="succeeded"} 1.0' in metrics


async def test_cancel_then_rerun_from_a_step(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]

    cancelled = await acme.post(f"/api/orders/{order_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["execution"]["state"] == "cancelled"
    twice = await acme.post(f"/api/orders/{order_id}/cancel")
    assert twice.status_code == 409

    unknown = await acme.post(f"/api/orders/{order_id}/rerun", json={"stepDefinitionId": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["pointer"] == "/stepDefinitionId"

    rerun = await acme.post(f"/api/orders/{order_id}/rerun", json={"stepDefinitionId": "notify"})
    assert rerun.status_code == 200, rerun.text
    done = await run_until_ended(api_store, acme, order_id)
    assert done["execution"]["state"] == "succeeded" and receiver.received


async def test_flow_versions_and_archive(acme: httpx.AsyncClient, receiver: Receiver) -> None:
    flow = rest_flow(receiver.url)
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    assert (await acme.post("/api/flows", json=flow)).status_code == 409
    flow["steps"][0]["successStatus"] = "Posted"
    updated = await acme.put("/api/flows/shop", json=flow)
    assert updated.status_code == 200 and updated.json()["currentVersion"] == 2

    versions = (await acme.get("/api/flows/shop/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    v1 = (await acme.get("/api/flows/shop/versions/1")).json()
    assert v1["steps"][0]["successStatus"] == "Sent"

    archived = await acme.post("/api/flows/shop/archive")
    assert archived.json()["archived"] is True
    assert (await acme.get("/api/flows")).json()["flows"] == []
    refused = await acme.post("/api/orders", json=ORDER)
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["pointer"] == "/flowId"


@pytest.mark.skipif(
    importlib.util.find_spec("fabflow.steps.production") is None,
    reason="fabflow.steps.production is not written yet",
)
async def test_production_files_are_downloaded_with_their_checksum(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    generate = {
        "stepDefinitionId": "generate",
        "type": "generate-production-files",
        "successStatus": "Files ready",
        "options": {"fileFormat": "stl"},
    }
    flow = {"id": "shop", "name": "Shop", "steps": [generate]}
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    done = await run_until_ended(api_store, acme, order_id, only=["generate-production-files"])
    assert done["execution"]["state"] == "succeeded", done["execution"]
    record = done["files"][0]
    assert "key" not in record and "preview" not in record

    # The API-key route (the record's url is a signed link: test_api_file_links.py).
    path = f"/api/orders/{order_id}/files/{record['name']}"
    got = await acme.get(path)
    assert got.status_code == 200
    assert got.headers["content-type"] == record["contentType"]
    assert got.headers["etag"] == f'"{record["sha256"]}"'
    assert got.headers["content-disposition"].startswith("attachment; filename=")
    assert hashlib.sha256(got.content).hexdigest() == record["sha256"]
    assert len(got.content) == record["bytes"]

    cached = await acme.get(path, headers={"If-None-Match": got.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    preview = await acme.get(httpx.URL(record["previewUrl"]).path)
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert preview.content.startswith(b"\x89PNG")

    missing = await acme.get(f"/api/orders/{order_id}/files/nope.stl")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
