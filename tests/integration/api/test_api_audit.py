"""The audit trail: flows saved, restored and archived, API keys created and revoked, and bulk
actions, each with the acting key's id and label and the time; a tenant sees only its own."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, client_for, rest_flow


async def test_flow_saves_archives_and_bulk_actions_are_on_the_trail(
    app: FastAPI, api_store: Store, globex: httpx.AsyncClient, receiver: Receiver
) -> None:
    key_id, secret = api_store.create_api_key("acme", "ops laptop", by="cli")
    async with client_for(app, secret) as acme:
        flow = rest_flow(receiver.url)
        assert (await acme.post("/api/flows", json=flow)).status_code == 201
        assert (await acme.put("/api/flows/shop", json=flow)).status_code == 200  # unchanged
        flow["steps"][0]["successStatus"] = "Posted"
        assert (await acme.put("/api/flows/shop", json=flow)).status_code == 200
        assert (await acme.post("/api/flows/shop/archive")).status_code == 200
        assert (await acme.put("/api/flows/shop", json=flow)).status_code == 200  # restored
        order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
        bulk = {"filter": {"flowId": "shop", "state": "pending"}}
        assert (await acme.post("/api/orders/bulk/cancel", json=bulk)).status_code == 200

        trail = (await acme.get("/api/audit")).json()
    by = f"key {key_id} (ops laptop)"
    kinds = [(e["kind"], e["data"].get("version"), e["by"]) for e in reversed(trail["events"])]
    assert kinds == [
        ("key_created", None, None),  # the fixtures' key, made by no one in particular
        ("key_created", None, "cli"),
        ("flow_saved", 1, by),
        ("flow_saved", 2, by),
        ("flow_archived", 2, by),
        ("flow_restored", 2, by),
        ("bulk_cancel", None, by),
    ]
    bulk_event = trail["events"][0]
    assert bulk_event["data"]["acted"] == 1 and bulk_event["data"]["filter"]["flow_id"] == "shop"
    assert bulk_event["at"].endswith("Z") or "+" in bulk_event["at"]
    events = (await globex.get(f"/api/orders/{order_id}/events")).status_code
    assert events == 404  # and the other tenant's trail holds none of it
    assert all(
        e["kind"] == "key_created" for e in (await globex.get("/api/audit")).json()["events"]
    )


async def test_the_trail_pages_back(acme: httpx.AsyncClient, receiver: Receiver) -> None:
    flow = rest_flow(receiver.url)
    for status in ("A", "B", "C"):
        flow["steps"][0]["successStatus"] = status
        assert (await acme.put("/api/flows/shop", json=flow)).status_code in (200, 404)
        if status == "A":
            assert (await acme.post("/api/flows", json=flow)).status_code == 201
    first = (await acme.get("/api/audit", params={"limit": 2})).json()
    assert len(first["events"]) == 2 and first["nextCursor"] is not None
    rest = (await acme.get("/api/audit", params={"before": first["nextCursor"]})).json()
    ids = [e["id"] for e in first["events"] + rest["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert rest["nextCursor"] is None


async def test_secrets_set_replaced_and_deleted_are_on_the_trail_without_values(
    acme: httpx.AsyncClient,
) -> None:
    value = "s3cr3t-token-value"
    assert (await acme.put("/api/secrets/MES_TOKEN", json={"value": value})).status_code == 201
    assert (await acme.put("/api/secrets/MES_TOKEN", json={"value": value})).status_code == 200
    assert (await acme.delete("/api/secrets/MES_TOKEN")).status_code == 204
    trail = (await acme.get("/api/audit")).json()["events"]
    kinds = [e["kind"] for e in reversed(trail) if e["kind"].startswith("secret_")]
    assert kinds == ["secret_created", "secret_replaced", "secret_deleted"]
    assert all(e["data"] == {"name": "MES_TOKEN"} for e in trail if e["kind"].startswith("secret"))
    assert value not in str(trail)
