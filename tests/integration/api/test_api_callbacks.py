"""Steps that wait on a callback (``waitForCallback``): the receiver gets the order with its
``updateUrl``, answers 2xx at once, and POSTs the outcome later, with no API key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

from fabflow.store.queue import waits
from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, client_for, state_of, worker_running

ORDER = {"flowId": "mes", "customer": {"name": "Ada"}, "lines": []}


def mes_flow(url: str, timeout: float | None = None) -> dict[str, Any]:
    wait: dict[str, Any] = {
        "stepDefinitionId": "mes",
        "type": "consume-rest-api",
        "successStatus": "Accepted by MES",
        "options": {"uri": url, "waitForCallback": True},
        "onSuccess": "erp",
        "onError": "error",
    }
    if timeout is not None:
        wait["timeout"] = timeout
    erp = {
        "stepDefinitionId": "erp",
        "type": "consume-rest-api",
        "successStatus": "Booked",
        "options": {"uri": url},
    }
    error = {
        "stepDefinitionId": "error",
        "type": "consume-rest-api",
        "successStatus": "Failed",
        "options": {"uri": url},
    }
    return {"id": "mes", "name": "MES", "steps": [wait, erp, error]}


def token_sent(receiver: Receiver) -> str:
    """The callback token of the first order the receiver got."""
    return str(receiver.received[0]["updateUrl"].rsplit("/", 1)[1])


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
async def anyone(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A caller with no API key, as a receiver calling back is."""
    async with client_for(app, None) as client:
        yield client


async def test_a_callback_ends_the_wait_and_the_flow_continues(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store) as worker:
        waiting = await state_of(acme, order_id, "waiting")
        assert not worker.running, "a waiting step holds a worker slot"
        sent = receiver.received[0]
        token = sent["updateUrl"].rsplit("/", 1)[1]
        assert sent["updateUrl"].startswith(f"{api_store.settings.public_url}/api/callbacks/")
        assert len(token) >= 22  # 128 bits or more
        attempt = waiting["execution"]["attempts"][0]
        assert attempt["outcome"] == "waiting" and attempt["wait"]["kind"] == "callback"
        assert waiting["status"] == "Created"  # no step has set one yet
        metrics = (await acme.get("/metrics")).text
        assert 'fabflow_orders{state="waiting"} 1.0' in metrics
        assert 'outcome="waiting"' not in metrics  # a waiting attempt has not ended

        body = {"outcome": "success", "status": "Printed", "data": {"jobId": "J-7"}}
        answer = await anyone.post(f"/api/callbacks/{token}", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"orderId": order_id, "state": "running"}
        done = await state_of(acme, order_id, "succeeded", "failed")
    assert done["execution"]["state"] == "succeeded"
    assert [h["status"] for h in done["statusHistory"]] == ["Printed", "Booked"]
    assert done["stepData"] == {"mes": {"jobId": "J-7"}}
    assert receiver.received[1]["stepData"] == {"mes": {"jobId": "J-7"}}  # the next step sees it
    first = done["execution"]["attempts"][0]
    assert first["outcome"] == "success" and first["wait"]["resolution"]["outcome"] == "success"
    events = (await acme.get(f"/api/orders/{order_id}/events")).json()["events"]
    kinds = [(e["kind"], e["data"].get("resolvedBy")) for e in events]
    assert ("step_waiting", None) in kinds and ("step_succeeded", "callback") in kinds

    again = await anyone.post(f"/api/callbacks/{token}", json=body)
    assert again.status_code == 200 and again.json()["orderId"] == order_id  # idempotent
    other = await anyone.post(f"/api/callbacks/{token}", json={"outcome": "error"})
    assert other.status_code == 409, other.text
    assert "Ada" not in other.text  # nothing of the order beyond its id


async def test_an_error_callback_takes_the_error_path_with_its_message(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        token = token_sent(receiver)
        body = {"outcome": "error", "message": "printer jammed"}
        assert (await anyone.post(f"/api/callbacks/{token}", json=body)).status_code == 200
        done = await state_of(acme, order_id, "succeeded", "failed")
    assert done["execution"]["state"] == "failed" and done["status"] == "Failed"
    assert done["execution"]["lastError"] == {
        "stepDefinitionId": "mes",
        "type": "callback",
        "message": "printer jammed",
    }
    assert receiver.received[-1]["execution"]["lastError"]["message"] == "printer jammed"


async def test_a_wait_past_its_timeout_takes_the_error_path_and_its_token_dies(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = mes_flow(receiver.url, timeout=400)
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        token = token_sent(receiver)
        done = await state_of(acme, order_id, "succeeded", "failed")
    first = done["execution"]["attempts"][0]
    assert first["outcome"] == "timeout" and first["error"]["type"] == "timeout"
    assert done["status"] == "Failed"
    late_by = _seconds(first["endedAt"]) - _seconds(first["wait"]["until"])
    assert 0 <= late_by < 1.0, f"timed out {late_by:.2f} s after its deadline"
    late = await anyone.post(f"/api/callbacks/{token}", json={"outcome": "success"})
    assert late.status_code == 404, late.text


async def test_every_attempt_of_a_visit_sends_the_same_update_url(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    """A receiver that took the first POST may keep its updateUrl (a worker can die after the
    POST and before recording it, and the attempt runs again): the URL must stay valid."""
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    receiver.fail = 1  # the first POST gets a 500: the attempt is retried
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        first, second = (r["updateUrl"] for r in receiver.received[:2])
        assert first == second
        token = first.rsplit("/", 1)[1]
        assert (
            await anyone.post(f"/api/callbacks/{token}", json={"outcome": "success"})
        ).is_success
        await state_of(acme, order_id, "succeeded")


async def test_cancel_while_waiting_ends_the_wait(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        listed = (await acme.get("/api/orders", params={"state": "waiting"})).json()
        assert [o["id"] for o in listed["orders"]] == [order_id]
        assert listed["counts"]["waiting"] == 1
        cancelled = await acme.post(f"/api/orders/{order_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["execution"]["attempts"][0]["outcome"] == "cancelled"
    token = token_sent(receiver)
    late = await anyone.post(f"/api/callbacks/{token}", json={"outcome": "success"})
    assert late.status_code == 404


async def test_a_callback_sent_before_the_wait_is_recorded_is_held_not_refused(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store
) -> None:
    """A receiver may call back as soon as it has the order, before it even answers the POST
    and so before the worker records the wait: the callback is held until it is recorded."""
    answers: list[httpx.Response] = []
    tasks: list[asyncio.Task[None]] = []

    async def call_back_at_once(request: web.Request) -> web.Response:
        url = (await request.json())["updateUrl"]

        async def send() -> None:
            answers.append(await anyone.post(url, json={"outcome": "success", "status": "Done"}))

        tasks.append(asyncio.create_task(send()))
        await asyncio.sleep(0.05)  # the callback is in before this answer
        return web.json_response({"accepted": True}, status=202)

    app = web.Application()
    app.router.add_post("/jobs", call_back_at_once)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    flow = mes_flow(f"http://127.0.0.1:{port}/jobs")
    flow["steps"] = [{**flow["steps"][0], "onSuccess": None, "onError": None}]  # the wait alone
    try:
        assert (await acme.post("/api/flows", json=flow)).status_code == 201
        order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
        async with worker_running(api_store):
            done = await state_of(acme, order_id, "succeeded", "failed")
            await asyncio.gather(*tasks)
    finally:
        await runner.cleanup()
    assert [a.status_code for a in answers] == [200], [a.text for a in answers]
    assert done["execution"]["state"] == "succeeded" and done["status"] == "Done"


async def test_a_wait_recorded_between_two_reads_of_the_callback_is_held_not_refused(
    acme: httpx.AsyncClient,
    anyone: httpx.AsyncClient,
    api_store: Store,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the callback's token lookup may run just before the worker commits the
    wait, and its next read just after: the callback must be held, not answered 404 (which
    left the order waiting for good)."""
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    real_fetch = waits.fastpath.fetch
    missed: list[bool] = []

    def fetch_missing_the_wait_once(conn: Any, query: Any, params: Any) -> Any:
        if query is waits._WAIT_OF_TOKEN and not missed:
            missed.append(True)
            return []  # as a lookup that ran before the wait was committed
        return real_fetch(conn, query, params)

    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        monkeypatch.setattr(waits.fastpath, "fetch", fetch_missing_the_wait_once)
        answer = await anyone.post(
            f"/api/callbacks/{token_sent(receiver)}", json={"outcome": "success"}
        )
        assert missed and answer.status_code == 200, answer.text
        assert (await state_of(acme, order_id, "succeeded"))["status"] == "Booked"


async def test_a_made_up_token_of_a_real_order_is_refused(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        token = token_sent(receiver)
        visit, _, mac = token.rpartition(".")
        forged = f"{visit}.{'A' * len(mac)}"
        answer = await anyone.post(f"/api/callbacks/{forged}", json={"outcome": "success"})
        assert answer.status_code == 404, answer.text


async def test_bad_callbacks_are_refused_with_reasons(
    acme: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    unknown = await anyone.post("/api/callbacks/" + "x" * 43, json={"outcome": "success"})
    assert unknown.status_code == 404
    poison = {"outcome": "success", "data": {"note": "a\u0000b", "n": 2**64}}
    refused = await anyone.post("/api/callbacks/" + "x" * 43, json=poison)
    assert refused.status_code == 422, refused.text
    assert {p["pointer"] for p in refused.json()["problems"]} == {"/data/note", "/data/n"}
    malformed = await anyone.post("/api/callbacks/" + "x" * 43, json={"outcome": "maybe"})
    assert malformed.status_code == 422
    assert [p["pointer"] for p in malformed.json()["problems"]] == ["/outcome"]
    missing = await anyone.post("/api/callbacks/" + "y" * 43, json={"status": "x"})
    assert missing.status_code == 422
    statuses = [
        (await anyone.post("/api/callbacks/" + "z" * 43, json={"outcome": "success"})).status_code
        for _ in range(15)
    ]
    assert statuses[:10] == [404] * 10 and 429 in statuses  # rate-limited per token
