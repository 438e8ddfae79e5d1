"""Bulk actions: "retry all failed orders of the erp flow" in one request, acting only on the
tenant's own orders, each recorded with who acted, and skipping (with the reason) the orders
whose state does not allow the action."""

from __future__ import annotations

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, order_when, rest_flow, worker_running

ENDED = ("succeeded", "failed", "cancelled")


async def _run_orders(
    client: httpx.AsyncClient, store: Store, receiver: Receiver, count: int
) -> list[str]:
    ids = [
        (await client.post("/api/orders", json={"flowId": "shop"})).json()["id"]
        for _ in range(count)
    ]
    async with worker_running(store):
        for order_id in ids:
            await order_when(client, order_id, lambda o: o["execution"]["state"] in ENDED)
    return ids


async def test_retry_all_failed_of_a_flow_touches_only_the_tenants_orders(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, retry=1)
    for client in (acme, globex):
        assert (await client.post("/api/flows", json=flow)).status_code == 201
    receiver.fail = 1000  # the receiver is down
    mine = await _run_orders(acme, api_store, receiver, 4)
    theirs = await _run_orders(globex, api_store, receiver, 2)
    receiver.fail = 0  # back up

    done = await acme.post(
        "/api/orders/bulk/retry", json={"filter": {"state": "failed", "flowId": "shop"}}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["matched"] == 4 and sorted(body["acted"]) == sorted(mine)
    assert body["skipped"] == []
    for order_id in theirs:  # another tenant's failed orders stay failed
        order = (await globex.get(f"/api/orders/{order_id}")).json()
        assert order["execution"]["state"] == "failed"
    async with worker_running(api_store):
        for order_id in mine:
            ended = await order_when(acme, order_id, lambda o: o["execution"]["state"] in ENDED)
            assert ended["execution"]["state"] == "succeeded"
    events = (await acme.get(f"/api/orders/{mine[0]}/events")).json()["events"]
    retried = [e for e in events if e["kind"] == "retried"]
    assert retried and retried[0]["data"]["by"].startswith("key ")
    assert retried[0]["data"]["bulk"] is True  # the timeline tells it from a single retry


async def test_bulk_cancel_by_ids_skips_what_it_cannot_cancel_with_the_reason(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    for client in (acme, globex):
        assert (await client.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    finished = (await _run_orders(acme, api_store, receiver, 1))[0]  # succeeded: fail=0
    pending = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    foreign = (await globex.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    done = await acme.post(
        "/api/orders/bulk/cancel", json={"ids": [pending, finished, foreign, pending]}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["acted"] == [pending] and body["matched"] == 3
    reasons = {s["id"]: s["reason"] for s in body["skipped"]}
    assert set(reasons) == {finished, foreign}
    assert "no order" in reasons[foreign]  # another tenant's order is not even seen
    assert (await globex.get(f"/api/orders/{foreign}")).json()["execution"]["state"] != "cancelled"


async def test_a_bulk_request_must_say_which_orders(acme: httpx.AsyncClient) -> None:
    assert (await acme.post("/api/orders/bulk/retry", json={})).status_code == 422
    assert (await acme.post("/api/orders/bulk/retry", json={"filter": {}})).status_code == 422
    unknown = await acme.post("/api/orders/bulk/retry", json={"filter": {"flow": "shop"}})
    assert unknown.status_code == 422
    assert (await acme.post("/api/orders/bulk/delete", json={"ids": []})).status_code == 422
