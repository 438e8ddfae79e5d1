"""Steps that wait for a person (``manual-confirmation``): an operator confirms or rejects the
order through the API, and the list finds the orders that wait for one."""

from __future__ import annotations

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver
from tests.integration.api.test_api_callbacks import ORDER, mes_flow, state_of, worker_running


async def test_waiting_for_confirmation_lists_no_order_that_waits_on_a_callback(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=mes_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
    waiting = (await acme.get("/api/orders", params={"state": "waiting"})).json()
    assert [o["id"] for o in waiting["orders"]] == [order_id]
    mine = (await acme.get("/api/orders", params={"waitingFor": "confirmation"})).json()
    assert mine["orders"] == []
    refused = await acme.get("/api/orders", params={"waitingFor": "callbacks"})
    assert refused.status_code == 422, refused.text
