"""Who did what: every operator action through the API is recorded on the order's events with
the acting key's prefix (or the UI session's), and a rerun body with a key this server does
not know is refused rather than silently ignored."""

from __future__ import annotations

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, rest_flow


async def test_cancel_and_rerun_record_the_acting_key(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    assert (await acme.post(f"/api/orders/{order_id}/cancel")).status_code == 200
    rerun = await acme.post(f"/api/orders/{order_id}/rerun", json={"stepDefinitionId": "notify"})
    assert rerun.status_code == 200, rerun.text
    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    by = {e["kind"]: e["data"].get("by") for e in events}
    (key,) = [k for k in api_store.list_api_keys() if k["tenant"] == "acme"]
    assert by["cancelled"] == f"key {key['id']}"  # the id `fabflow apikey revoke` takes
    assert by["rerun"] == by["cancelled"]


async def test_a_rerun_body_with_an_unknown_key_is_refused(
    acme: httpx.AsyncClient, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    assert (await acme.post(f"/api/orders/{order_id}/cancel")).status_code == 200
    refused = await acme.post(
        f"/api/orders/{order_id}/rerun", json={"stepDefinitionId": "notify", "dta": {"x": 1}}
    )
    assert refused.status_code == 422, refused.text
    assert any(p["pointer"].endswith("dta") for p in refused.json()["problems"])
