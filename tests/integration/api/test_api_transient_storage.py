"""A disk that refuses a step's files is an outage, not a fault of the order: the attempt fails
as a transient ``storage`` error and is retried, and the order goes on once the disk is back,
with no second email (every attempt of a visit has one Message-ID)."""

from __future__ import annotations

import email
import shutil

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import order_when, state_of, worker_running

MAIL_FLOW = {
    "id": "mail",
    "name": "Mail",
    "steps": [
        {
            "stepDefinitionId": "tell",
            "type": "send-email",
            "successStatus": "Told",
            "options": {"recipients": ["ops@example.com"], "subject": "Order", "message": "Hi"},
        }
    ],
}


async def test_an_outbox_that_cannot_be_written_is_retried_until_it_can(
    acme: httpx.AsyncClient, api_store: Store
) -> None:
    outbox = api_store.settings.outbox_dir
    shutil.rmtree(outbox, ignore_errors=True)
    outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox.write_text("a file where the outbox folder should be")  # every write fails
    assert (await acme.post("/api/flows", json=MAIL_FLOW)).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "mail"})).json()["id"]
    async with worker_running(api_store):
        failing = await order_when(acme, order_id, lambda o: len(o["execution"]["attempts"]) >= 2)
        first = failing["execution"]["attempts"][0]
        assert first["error"]["type"] == "storage", first
        assert failing["execution"]["state"] != "failed"
        outbox.unlink()  # the disk is back
        done = await state_of(acme, order_id, "succeeded", "failed")
    assert done["execution"]["state"] == "succeeded" and done["status"] == "Told"
    sent = list(outbox.glob("*.eml"))
    assert len(sent) == 1
    assert email.message_from_bytes(sent[0].read_bytes())["Message-ID"]
