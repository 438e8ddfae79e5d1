"""A rerun that fixes the order first: the operator moves it to the flow's newest version or
patches its data (RFC 7386), and the rerun's event says what was changed and by whom."""

from __future__ import annotations

from typing import Any

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, rest_flow, run_until_ended


async def _cancelled_order(acme: httpx.AsyncClient, receiver: Receiver) -> str:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    order = {"flowId": "shop", "data": {"name": "Ada Lovelac", "note": "typo", "keep": 1}}
    order_id: str = (await acme.post("/api/orders", json=order)).json()["id"]
    assert (await acme.post(f"/api/orders/{order_id}/cancel")).status_code == 200
    return order_id


async def test_a_rerun_on_the_latest_flow_with_patched_data(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    order_id = await _cancelled_order(acme, receiver)
    fixed = rest_flow(receiver.url, successStatus="Posted")
    assert (await acme.put("/api/flows/shop", json=fixed)).json()["currentVersion"] == 2

    body = {
        "stepDefinitionId": "notify",
        "flowVersion": "latest",
        "data": {"name": "Ada Lovelace", "note": None},
    }
    rerun = await acme.post(f"/api/orders/{order_id}/rerun", json=body)
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["flowVersion"] == 2

    done = await run_until_ended(api_store, acme, order_id)
    assert done["execution"]["state"] == "succeeded"
    assert done["status"] == "Posted"  # version 2's status, not version 1's "Sent"
    assert done["data"] == {"name": "Ada Lovelace", "keep": 1}
    assert receiver.received[-1]["data"] == {"name": "Ada Lovelace", "keep": 1}

    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    event = next(e for e in events if e["kind"] == "rerun")
    assert event["data"]["flowVersion"] == {"from": 1, "to": 2}
    assert event["data"]["dataPatch"] == {"name": "Ada Lovelace", "note": None}
    assert event["data"]["by"].startswith("key ")


async def test_a_rerun_on_a_named_version_without_a_patch(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    order_id = await _cancelled_order(acme, receiver)
    fixed = rest_flow(receiver.url, successStatus="Posted")
    assert (await acme.put("/api/flows/shop", json=fixed)).status_code == 200
    body = {"stepDefinitionId": "notify", "flowVersion": 1}
    assert (await acme.post(f"/api/orders/{order_id}/rerun", json=body)).status_code == 200
    done = await run_until_ended(api_store, acme, order_id)
    assert done["status"] == "Sent" and done["flowVersion"] == 1
    assert done["data"]["note"] == "typo"
    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    event = next(e for e in events if e["kind"] == "rerun")
    assert "flowVersion" not in event["data"] and "dataPatch" not in event["data"]


async def test_a_bad_fix_is_refused_and_changes_nothing(
    acme: httpx.AsyncClient, receiver: Receiver
) -> None:
    order_id = await _cancelled_order(acme, receiver)
    url = f"/api/orders/{order_id}/rerun"

    missing = await acme.post(url, json={"stepDefinitionId": "notify", "flowVersion": 9})
    assert missing.status_code == 422, missing.text
    assert missing.json()["problems"][0]["pointer"] == "/flowVersion"
    assert "no version 9" in missing.json()["problems"][0]["message"]

    word = await acme.post(url, json={"stepDefinitionId": "notify", "flowVersion": "newest"})
    assert word.status_code == 422
    assert any("flowVersion" in p["pointer"] for p in word.json()["problems"])

    many = {f"k{i}": i for i in range(98)}
    crowded = await acme.post(url, json={"stepDefinitionId": "notify", "data": many})
    assert crowded.status_code == 422, crowded.text
    assert crowded.json()["problems"][0]["pointer"] == "/data"

    order = (await acme.get(f"/api/orders/{order_id}")).json()
    assert order["execution"]["state"] == "cancelled"  # nothing half-done
    assert order["data"] == {"name": "Ada Lovelac", "note": "typo", "keep": 1}
    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    assert not any(e["kind"] == "rerun" for e in events)


def _flow_with_handler(url: str) -> dict[str, Any]:
    post = {
        "stepDefinitionId": "post",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": url},
        "retry": {"maxAttempts": 1},
        "onError": "apologise",
    }
    apologise = {
        "stepDefinitionId": "apologise",
        "type": "consume-rest-api",
        "successStatus": "Failed",
        "options": {"uri": url},
    }
    return {"id": "shop", "name": "Shop", "steps": [post, apologise]}


async def test_an_error_handler_run_again_is_still_on_the_error_path(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=_flow_with_handler(receiver.url))).status_code == 201
    receiver.fail = 1
    order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    failed = await run_until_ended(api_store, acme, order_id)
    assert failed["execution"]["state"] == "failed" and failed["status"] == "Failed"
    error = failed["execution"]["lastError"]
    assert error["stepDefinitionId"] == "post"

    body = {"stepDefinitionId": "apologise"}
    assert (await acme.post(f"/api/orders/{order_id}/rerun", json=body)).status_code == 200
    again = await run_until_ended(api_store, acme, order_id)
    # The badge and the status agree: the handler ran, so the order ended failed, and the
    # handler was handed the same error as the first time.
    assert again["execution"]["state"] == "failed" and again["status"] == "Failed"
    assert again["execution"]["lastError"] == error
    assert receiver.received[-1]["execution"]["lastError"] == error


async def test_rerunning_the_error_handler_of_a_good_order_says_so(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=_flow_with_handler(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    done = await run_until_ended(api_store, acme, order_id)
    assert done["execution"]["state"] == "succeeded" and done["status"] == "Sent"

    body = {"stepDefinitionId": "apologise"}
    assert (await acme.post(f"/api/orders/{order_id}/rerun", json=body)).status_code == 200
    again = await run_until_ended(api_store, acme, order_id)
    assert again["execution"]["state"] == "failed" and again["status"] == "Failed"
    assert again["execution"]["lastError"]["type"] == "rerun"
    assert "had not failed" in receiver.received[-1]["execution"]["lastError"]["message"]

    body = {"stepDefinitionId": "post"}  # from the start again: a clean run
    assert (await acme.post(f"/api/orders/{order_id}/rerun", json=body)).status_code == 200
    clean = await run_until_ended(api_store, acme, order_id)
    assert clean["execution"]["state"] == "succeeded" and clean["execution"]["lastError"] is None
