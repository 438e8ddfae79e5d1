"""Steps that wait for a person (``manual-confirmation``): the assignees are told by email (a
real aiosmtpd server on 127.0.0.1), then an operator confirms or rejects the order through the
API, and the list finds the orders that wait for one."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from fabflow.settings import Settings
from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, rest_flow, state_of, worker_running
from tests.integration.api.test_api_callbacks import ORDER, mes_flow
from tests.integration.steps.step_servers import MailServer, start_mail_server

PROMPT = "Is the plate for {{ order.customer.name }} fine to print?"


def review_flow(url: str, timeout: float | None = None) -> dict[str, Any]:
    """A person checks the order, then it goes to the printer; a rejection goes to the shop."""
    check: dict[str, Any] = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {"prompt": PROMPT, "assignees": ["ops@example.com"]},
        "onSuccess": "print",
        "onError": "tell-shop",
    }
    if timeout is not None:
        check["timeout"] = timeout
    send = {"type": "consume-rest-api", "options": {"uri": url}}
    steps = [
        check,
        {"stepDefinitionId": "print", "successStatus": "Sent to printer", **send},
        {"stepDefinitionId": "tell-shop", "successStatus": "Refused", **send},
    ]
    return {"id": "mes", "name": "Reviewed", "steps": steps}


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = start_mail_server()
    yield server
    server.controller.stop()


@pytest.fixture
def api_settings(db_settings: Settings, mail_server: MailServer) -> Settings:
    """The API tests' settings, with mail going to the test's SMTP server."""
    return db_settings.with_(
        outbound_allow=("127.0.0.1",),
        retry_initial_delay_ms=50,
        smtp_url=f"smtp://127.0.0.1:{mail_server.port}",
        public_url="https://fab.example.com",
    )


async def waiting_order(acme: httpx.AsyncClient, receiver: Receiver, **flow: Any) -> str:
    assert (
        await acme.post("/api/flows", json=review_flow(receiver.url, **flow))
    ).status_code == 201
    order_id: str = (await acme.post("/api/orders", json=ORDER)).json()["id"]
    return order_id


async def test_confirm_continues_on_success_and_records_who_and_when(
    acme: httpx.AsyncClient,
    api_store: Store,
    receiver: Receiver,
    mail_server: MailServer,
    keys: dict[str, str],
) -> None:
    order_id = await waiting_order(acme, receiver)
    async with worker_running(api_store) as worker:
        waiting = await state_of(acme, order_id, "waiting")
        assert not worker.running, "a step that waits for a person holds a worker slot"
        attempt = waiting["execution"]["attempts"][0]
        assert attempt["outcome"] == "waiting" and attempt["wait"]["kind"] == "confirmation"
        assert attempt["details"]["prompt"] == "Is the plate for Ada fine to print?"
        listed = (await acme.get("/api/orders", params={"waitingFor": "confirmation"})).json()
        assert [o["id"] for o in listed["orders"]] == [order_id]

        before = time.time()
        answer = await acme.post(f"/api/orders/{order_id}/confirm", json={"comment": "fine"})
        after = time.time()
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == order_id
        assert answer.json()["execution"]["state"] in ("running", "succeeded")
        done = await state_of(acme, order_id, "succeeded", "failed")
    assert done["execution"]["state"] == "succeeded"
    assert [h["status"] for h in done["statusHistory"]] == ["Checked", "Sent to printer"]
    resolution = done["execution"]["attempts"][0]["wait"]["resolution"]
    assert resolution["outcome"] == "success" and resolution["message"] == "fine"
    assert resolution["by"] == f"key {_key_id(api_store, 'acme')}"
    at = datetime.fromisoformat(resolution["at"].replace("Z", "+00:00")).timestamp()
    assert before - 0.001 <= at <= after
    again = await acme.post(f"/api/orders/{order_id}/confirm")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "conflict"
    listed = (await acme.get("/api/orders", params={"waitingFor": "confirmation"})).json()
    assert listed["orders"] == []

    [envelope] = mail_server.handler.messages
    assert envelope.rcpt_tos == ["ops@example.com"]
    message = email.message_from_bytes(
        envelope.original_content or b"", policy=email.policy.default
    )
    assert message["Subject"] == f"Order {order_id} waits for your confirmation"
    body = message.get_body()
    assert body is not None
    text = body.get_content()
    assert "Is the plate for Ada fine to print?" in text
    assert f"https://fab.example.com/orders/{order_id}" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [({"comment": "the text is misspelt"}, "the text is misspelt"), (None, "without a comment")],
)
async def test_reject_takes_the_error_path_with_the_comment(
    acme: httpx.AsyncClient,
    api_store: Store,
    receiver: Receiver,
    keys: dict[str, str],
    body: dict[str, str] | None,
    message: str,
) -> None:
    order_id = await waiting_order(acme, receiver)
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        answer = await acme.post(f"/api/orders/{order_id}/reject", json=body)
        assert answer.status_code == 200, answer.text
        done = await state_of(acme, order_id, "succeeded", "failed")
    error = done["execution"]["lastError"]
    assert error["stepDefinitionId"] == "check" and error["type"] == "rejected"
    assert message in error["message"]
    assert done["status"] == "Refused"
    assert receiver.received[-1]["execution"]["lastError"] == error  # onError's step sees it
    first = done["execution"]["attempts"][0]
    assert first["outcome"] == "error" and first["error"] == {
        k: error[k] for k in ("type", "message")
    }
    assert first["wait"]["resolution"]["by"] == f"key {_key_id(api_store, 'acme')}"


async def test_a_wait_nobody_answers_times_out_through_the_error_path(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    order_id = await waiting_order(acme, receiver, timeout=400)
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
        done = await state_of(acme, order_id, "succeeded", "failed")
    first = done["execution"]["attempts"][0]
    assert first["outcome"] == "timeout" and first["error"]["type"] == "timeout"
    assert done["execution"]["lastError"]["type"] == "timeout"
    assert done["status"] == "Refused"
    late = await acme.post(f"/api/orders/{order_id}/confirm")
    assert late.status_code == 409, late.text


async def test_only_an_order_that_waits_for_a_person_can_be_answered(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    plain = (await acme.post("/api/orders", json={**ORDER, "flowId": "shop"})).json()["id"]
    for verb in ("confirm", "reject"):
        refused = await acme.post(f"/api/orders/{plain}/{verb}")  # pending: no wait at all
        assert refused.status_code == 409, refused.text
        assert "not waiting for a confirmation" in refused.json()["message"]

    order_id = await waiting_order(acme, receiver)
    async with worker_running(api_store):
        await state_of(acme, order_id, "waiting")
    unknown = await acme.post("/api/orders/ord_nope/confirm")
    assert unknown.status_code == 404, unknown.text
    theirs = await globex.post(f"/api/orders/{order_id}/confirm")
    assert theirs.status_code == 404, theirs.text
    for bad in ({"comments": "typo"}, {"comment": 5}, {"comment": "x" * 2001}):
        invalid = await acme.post(f"/api/orders/{order_id}/reject", json=bad)
        assert invalid.status_code == 422, invalid.text
        assert invalid.json()["problems"][0]["pointer"].startswith("/comment")
    still = (await acme.get(f"/api/orders/{order_id}")).json()
    assert still["execution"]["state"] == "waiting"  # nothing above touched the wait
    assert (await acme.post(f"/api/orders/{order_id}/cancel")).status_code == 200
    cancelled = await acme.post(f"/api/orders/{order_id}/confirm")
    assert cancelled.status_code == 409, cancelled.text


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
    answer = await acme.post(f"/api/orders/{order_id}/confirm")  # it waits, but not for a person
    assert answer.status_code == 409, answer.text


def _key_id(store: Store, tenant: str) -> str:
    """The id of the tenant's one key: how an actor is named on the record."""
    (key,) = [k for k in store.list_api_keys() if k["tenant"] == tenant]
    return str(key["id"])
