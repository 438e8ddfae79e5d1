"""Status webhooks through the real app, worker and sender, to a real HTTP receiver on
127.0.0.1: deliveries arrive signed, once per event id and in order per order, through an
outage; a claimed delivery whose sender died is sent again; the outbound policy applies; one
tenant never sees another's webhooks or deliveries. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from fabflow.engine.webhooks import Backoff, WebhookRunner
from fabflow.steps.outbound import OutboundPolicy
from fabflow.steps.signing import verify
from fabflow.store.repository import Store
from fabflow.store.webhooks import outbox
from tests.integration.api.conftest import Receiver, rest_flow, worker_running

ALL = [
    "order.created",
    "order.status_changed",
    "order.waiting",
    "order.unhealthy",
    "order.succeeded",
    "order.failed",
    "order.cancelled",
]


@dataclass
class Hook:
    """A webhook receiver: answers 503 to the first ``down`` requests, then 200."""

    url: str = ""
    down: int = 0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.down > 0:
            self.down -= 1
            self.answered.append(503)
            return web.Response(status=503, text="down", headers={"Retry-After": "0"})
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        self.answered.append(200)
        return web.json_response({"ok": True})

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]

    def of(self, order_id: str) -> list[str]:
        return [e["type"] for e in self.events() if e["data"]["orderId"] == order_id]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    rec = Hook()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


FAST = Backoff(initial=0.05, maximum=0.2)


async def _sending(store: Store, **options: Any) -> tuple[WebhookRunner, asyncio.Task[None]]:
    runner = WebhookRunner(store, poll_seconds=0.05, idle_seconds=0.05, backoff=FAST, **options)
    return runner, asyncio.create_task(runner.run())


async def _until(check: Any, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


def _order(n: int) -> dict[str, Any]:
    return {
        "externalId": f"WH-{n}",
        "flowId": "shop",
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "lines": [{"id": "1", "product": "nameplate", "parameters": {"text": "Ada"}}],
    }


async def _add(client: httpx.AsyncClient, url: str, events: list[str] = ALL) -> dict[str, Any]:
    made = await client.post("/api/webhooks", json={"url": url, "events": events})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_deliveries_arrive_signed_in_order_once_each(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver, hook: Hook
) -> None:
    made = await _add(acme, hook.url)
    assert made["secret"].startswith("whsec_")
    assert "secret" not in (await acme.get(f"/api/webhooks/{made['id']}")).json()
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    sender, task = await _sending(api_store)
    try:
        async with worker_running(api_store):
            ids = [(await acme.post("/api/orders", json=_order(n))).json()["id"] for n in range(4)]
            want = ["order.created", "order.status_changed", "order.succeeded"]
            await _until(lambda: all(hook.of(i) == want for i in ids))
            await asyncio.sleep(0.3)  # nothing more comes
    finally:
        sender.stop()
        await task
    assert all(hook.of(i) == want for i in ids)
    events = hook.events()
    assert len({e["id"] for e in events}) == len(events) == 12  # once per event id
    for body, headers, event in zip(hook.bodies, hook.headers, events, strict=True):
        assert verify(made["secret"], headers["Fabflow-Signature"], body)
        assert headers["Fabflow-Event-Id"] == event["id"]
    changed = next(e for e in events if e["type"] == "order.status_changed")
    assert changed["data"]["status"] == "Sent" and changed["data"]["externalId"].startswith("WH-")
    created = next(e for e in events if e["type"] == "order.created")
    assert created["data"]["status"] == "Created" and created["data"]["state"] == "pending"

    log = (await acme.get(f"/api/webhooks/{made['id']}/deliveries")).json()["deliveries"]
    assert len(log) == 12 and {d["state"] for d in log} == {"succeeded"}
    assert all(d["statusCode"] == 200 and d["latencyMs"] is not None for d in log)


async def test_an_outage_is_retried_and_everything_arrives_in_order(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver, hook: Hook
) -> None:
    made = await _add(acme, hook.url, ["order.created", "order.status_changed"])
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    hook.down = 8
    sender, task = await _sending(api_store)
    try:
        async with worker_running(api_store):
            ids = [(await acme.post("/api/orders", json=_order(n))).json()["id"] for n in range(3)]
            want = ["order.created", "order.status_changed"]
            await _until(lambda: all(hook.of(i) == want for i in ids))
    finally:
        sender.stop()
        await task
    assert hook.answered.count(503) == 8
    log = (await acme.get(f"/api/webhooks/{made['id']}/deliveries")).json()["deliveries"]
    assert {d["state"] for d in log} == {"succeeded"}
    assert max(d["attempts"] for d in log) > 1


async def test_a_delivery_claimed_by_a_dead_sender_is_sent_after_its_lease(
    acme: httpx.AsyncClient, api_store: Store, hook: Hook
) -> None:
    await _add(acme, hook.url, ["order.created"])
    assert (await acme.post("/api/flows", json=rest_flow(hook.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=_order(1))).json()["id"]
    assert outbox.dispatch(api_store) == 1
    # A sender claims it and dies before sending (its process was killed).
    [claimed] = outbox.claim(api_store, lease_seconds=0.5)
    assert outbox.claim(api_store, lease_seconds=0.5) == []  # held while the lease lasts
    sender, task = await _sending(api_store)
    try:
        await _until(lambda: hook.of(order_id) == ["order.created"])
    finally:
        sender.stop()
        await task
    # The dead sender's late result is refused: the delivery was taken over.
    assert not outbox.record(api_store, claimed, outbox.SendResult(outbox.FAILED, error="late"))
    assert hook.events()[0]["id"] == claimed.event_id


async def test_the_outbound_policy_refuses_an_internal_address(
    acme: httpx.AsyncClient, api_store: Store, hook: Hook
) -> None:
    made = await _add(acme, hook.url, ["order.created"])
    assert (await acme.post("/api/flows", json=rest_flow(hook.url))).status_code == 201
    await acme.post("/api/orders", json=_order(1))
    runner = WebhookRunner(api_store, poll_seconds=0.05, idle_seconds=0.05, backoff=FAST)
    runner.policy = OutboundPolicy.from_allow(())  # FABFLOW_OUTBOUND_ALLOW unset
    task = asyncio.create_task(runner.run())
    path = f"/api/webhooks/{made['id']}/deliveries"
    try:
        async with asyncio.timeout(10):
            log: list[dict[str, Any]] = []
            while [d["state"] for d in log] != ["failed"]:
                await asyncio.sleep(0.05)
                log = (await acme.get(path)).json()["deliveries"]
    finally:
        runner.stop()
        await task
    assert log[0]["state"] == "failed" and "FABFLOW_OUTBOUND_ALLOW" in log[0]["error"]
    assert hook.bodies == []

    # Allowed now: sent again by hand, it arrives with the same event id.
    again = await acme.post(f"{path}/{log[0]['id']}/resend")
    assert again.status_code == 200 and again.json()["state"] == "pending"
    sender, task = await _sending(api_store)
    try:
        await _until(lambda: len(hook.bodies) == 1)
    finally:
        sender.stop()
        await task
    assert hook.events()[0]["id"] == log[0]["eventId"]


async def test_webhooks_are_checked_and_kept_per_tenant(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, hook: Hook
) -> None:
    unknown = await acme.post("/api/webhooks", json={"url": hook.url, "events": ["order.shipped"]})
    assert unknown.status_code == 422
    problem = unknown.json()["problems"][0]
    assert problem["pointer"] == "/events/0" and "order.status_changed" in problem["message"]
    bad_url = await acme.post("/api/webhooks", json={"url": "ftp://x", "events": ALL})
    assert bad_url.status_code == 422 and bad_url.json()["problems"][0]["pointer"] == "/url"

    made = await _add(acme, hook.url, ["order.created"])
    path = f"/api/webhooks/{made['id']}"
    assert (await globex.get("/api/webhooks")).json()["webhooks"] == []
    for method, url in [
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/deliveries/1/resend"),
    ]:
        body = {"enabled": False} if method == "PATCH" else None
        answer = await globex.request(method, url, json=body)
        assert answer.status_code == 404, (method, url, answer.text)
    assert (await acme.get(path)).json()["enabled"] is True

    off = await acme.patch(path, json={"enabled": False, "events": ["order.failed"]})
    assert off.status_code == 200 and off.json()["events"] == ["order.failed"]
    assert (await acme.delete(path)).status_code == 204
    assert (await acme.get(path)).status_code == 404
