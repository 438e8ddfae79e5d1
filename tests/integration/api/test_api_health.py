"""Order health through the real app on a real store: a flow's deadline, a step failing and
being retried, a wait past its deadline, the unhealthy filter and counts."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import (
    Receiver,
    order_when,
    rest_flow,
    run_until_ended,
    worker_running,
)

ORDER: dict[str, Any] = {"flowId": "shop", "customer": {"name": "Ada"}, "lines": []}
HOUR_MS = 3_600_000
# Eight attempts an hour apart: a failing step stays failing for the whole test.
SLOW_RETRY = {"maxAttempts": 8, "initialDelay": HOUR_MS, "maxDelay": HOUR_MS}


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def listed(client: httpx.AsyncClient, **params: str) -> tuple[list[str], dict[str, int]]:
    """The ids the list returns with ``params``, and its health counts."""
    page = (await client.get("/api/orders", params=params)).json()
    return [o["id"] for o in page["orders"]], page["healthCounts"]


def retrying(order: dict[str, Any]) -> bool:
    return bool(order["execution"]["attempts"][-1]["outcome"] == "queued") and (
        order["execution"]["attempts"][-1]["attempt"] > 1
    )


async def test_a_new_order_is_created_and_healthy(
    acme: httpx.AsyncClient, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    order = (await acme.post("/api/orders", json=ORDER)).json()
    assert order["status"] == "Created" and order["statusHistory"] == []
    assert order["health"] == {"state": "healthy", "reason": None, "nextAttemptAt": None}
    assert (await listed(acme, status="Created"))[0] == [order["id"]]


async def test_a_step_failing_and_retried_makes_its_order_unhealthy(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, retry=SLOW_RETRY)
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    fine = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    assert (await run_until_ended(api_store, acme, fine))["health"]["state"] == "healthy"

    receiver.fail = 100
    sick = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        order = await order_when(acme, sick, retrying)
    failed_at = time.time()
    health = order["health"]
    assert health["state"] == "unhealthy"
    next_at = health["nextAttemptAt"]
    assert next_at == order["execution"]["attempts"][-1]["scheduledAt"]
    assert abs(seconds(next_at) - (failed_at + 3600)) < 5
    assert health["reason"] == (
        f"retrying: attempt 2 of 8, next at {next_at}, last error: {receiver.url} answered HTTP 500"
    )
    assert order["execution"]["state"] == "running"  # the state alone does not tell

    assert await listed(acme, health="unhealthy") == ([sick], {"healthy": 1, "unhealthy": 1})
    assert (await listed(acme, health="healthy"))[0] == [fine]
    assert (await listed(acme, health="unhealthy", state="succeeded"))[0] == []
    metrics = (await acme.get("/metrics")).text
    assert "\nfabflow_orders_unhealthy 1.0\n" in metrics
    wrong = await acme.get("/api/orders", params={"health": "sick"})
    assert wrong.status_code == 422


async def test_retry_now_runs_the_next_attempt_at_once_and_the_order_heals(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, retry=SLOW_RETRY)
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    receiver.fail = 2
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    not_yet = await acme.post(f"/api/orders/{order_id}/retry-now")
    assert not_yet.status_code == 409 and "has no retry waiting" in not_yet.json()["message"]
    async with worker_running(api_store):
        await order_when(acme, order_id, retrying)
        assert (await globex.post(f"/api/orders/{order_id}/retry-now")).status_code == 404

        now = await acme.post(f"/api/orders/{order_id}/retry-now")  # attempt 2 runs, fails
        assert now.status_code == 200, now.text
        asked = time.time()
        # The worker may have run it already (and queued attempt 3 an hour on): attempt 2's
        # time tells, not the health nor the last attempt.
        second = [a for a in now.json()["execution"]["attempts"] if a["attempt"] == 2]
        assert second and seconds(second[0]["scheduledAt"]) <= asked
        third = await order_when(
            acme, order_id, lambda o: retrying(o) and o["execution"]["attempts"][-1]["attempt"] == 3
        )
        assert third["health"]["reason"].startswith("retrying: attempt 3 of 8, next at ")

        await acme.post(f"/api/orders/{order_id}/retry-now")  # attempt 3 succeeds
        done = await order_when(acme, order_id, lambda o: o["execution"]["state"] == "succeeded")
    assert time.time() - asked < 10  # not the hour of the backoff
    assert done["health"] == {"state": "healthy", "reason": None, "nextAttemptAt": None}
    assert [a["outcome"] for a in done["execution"]["attempts"]] == ["error", "error", "success"]
    assert len(receiver.received) == 3

    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    now_events = [e["data"] for e in events if e["kind"] == "retry_now"]
    by = now_events[0].get("by", "")
    assert by.startswith("key ")  # who pressed Retry now
    assert now_events == [
        {"stepDefinitionId": "notify", "attempt": 2, "by": by},
        {"stepDefinitionId": "notify", "attempt": 3, "by": by},
    ]
    late = await acme.post(f"/api/orders/{order_id}/retry-now")
    assert late.status_code == 409 and late.json()["code"] == "conflict"
    unknown = await acme.post("/api/orders/ord_nope/retry-now")
    assert unknown.status_code == 404


async def test_an_order_past_its_flows_deadline_is_unhealthy_until_it_ends(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url) | {"deadline": 1000}
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    roomy = rest_flow(receiver.url) | {"id": "roomy", "deadline": HOUR_MS}
    assert (await acme.post("/api/flows", json=roomy)).status_code == 201
    late = (await acme.post("/api/orders", json=ORDER)).json()
    in_time = (await acme.post("/api/orders", json=ORDER | {"flowId": "roomy"})).json()
    assert late["health"]["state"] == "healthy"
    await asyncio.sleep(1.1)

    order = (await acme.get(f"/api/orders/{late['id']}")).json()
    deadline = seconds(late["createdAt"]) + 1
    assert order["health"]["state"] == "unhealthy"
    assert order["health"]["reason"].startswith("past the flow's deadline since ")
    since = order["health"]["reason"].removeprefix("past the flow's deadline since ")
    assert abs(seconds(since) - deadline) < 0.002 and order["health"]["nextAttemptAt"] is None
    assert await listed(acme, health="unhealthy") == ([late["id"]], {"healthy": 1, "unhealthy": 1})

    done = await run_until_ended(api_store, acme, late["id"])
    assert done["execution"]["state"] == "succeeded" and done["health"]["state"] == "healthy"
    assert (await listed(acme, health="unhealthy"))[0] == []
    assert (await acme.get(f"/api/orders/{in_time['id']}")).json()["health"]["state"] == "healthy"


async def test_a_wait_past_its_deadline_is_unhealthy_while_no_worker_times_it_out(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, timeout=1500)
    flow["steps"][0]["options"]["waitForCallback"] = True
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        order = await order_when(acme, order_id, lambda o: o["execution"]["state"] == "waiting")
    assert order["health"]["state"] == "healthy"  # waiting within its deadline is fine
    metrics = (await acme.get("/metrics")).text
    assert 'fabflow_orders{state="waiting"} 1.0' in metrics
    assert "\nfabflow_orders_unhealthy 0.0\n" in metrics
    until = order["execution"]["attempts"][-1]["wait"]["until"]
    await asyncio.sleep(max(0.0, seconds(until) - time.time()) + 0.05)

    order = (await acme.get(f"/api/orders/{order_id}")).json()
    assert order["execution"]["state"] == "waiting"
    reason = f"waiting past its deadline since {until}"
    assert order["health"] == {"state": "unhealthy", "reason": reason, "nextAttemptAt": None}
    assert (await listed(acme, health="unhealthy"))[0] == [order_id]
    assert "\nfabflow_orders_unhealthy 1.0\n" in (await acme.get("/metrics")).text

    async with worker_running(api_store):  # a worker times it out: the order fails
        order = await order_when(acme, order_id, lambda o: o["execution"]["state"] == "failed")
    assert order["health"]["state"] == "healthy"


async def test_a_flow_keeps_its_deadline_per_version(
    acme: httpx.AsyncClient, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url) | {"deadline": 86_400_000}
    created = await acme.post("/api/flows", json=flow)
    assert created.status_code == 201, created.text
    assert created.json()["deadline"] == 86_400_000

    without: dict[str, Any] = {k: v for k, v in flow.items() if k != "deadline"}
    assert (await acme.put("/api/flows/shop", json=without)).json()["deadline"] is None
    assert (await acme.get("/api/flows/shop/versions/1")).json()["deadline"] == 86_400_000

    wrong = await acme.put("/api/flows/shop", json=flow | {"deadline": -1})
    assert wrong.status_code == 422
    assert wrong.json()["problems"][0]["pointer"] == "/deadline"
