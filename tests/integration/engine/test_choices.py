"""Choices and step outputs through the worker on a real store (SQLite and PostgreSQL), with
real HTTP receivers: a choice routes BE and US orders to two receivers, and a later step reads
the job id a receiver answered with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.rest import RestStep
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.integration.steps.step_servers import Receiver, start_receiver
from tests.support import executors as test_steps

QUERIES: list[str] = []  # the query strings the EU receiver saw


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    eu, eu_runner = await start_receiver()
    us, us_runner = await start_receiver()

    async def eu_answer(request: web.Request) -> web.Response:
        QUERIES.append(request.query_string)
        return web.json_response({"jobId": "EU-42"}, headers={"X-Request-Id": "r1"})

    eu.handler = eu_answer
    QUERIES.clear()
    try:
        yield eu, us
    finally:
        await eu_runner.cleanup()
        await us_runner.cleanup()


def rest(sid: str, uri: str, **kw: Any) -> dict[str, Any]:
    return {
        "stepDefinitionId": sid,
        "type": "consume-rest-api",
        "successStatus": f"{sid} done",
        "options": {"uri": uri},
        **kw,
    }


def routing_flow(eu: Receiver, us: Receiver) -> list[dict[str, Any]]:
    return [
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "options": {
                "rules": [
                    {"when": 'order.data.country in ["BE", "NL"]', "next": "eu"},
                    {"when": 'order.data.country == "US"', "next": "us"},
                ],
                "otherwise": "us",
            },
        },
        rest("eu", f"{eu.url}/jobs", onSuccess="confirm"),
        rest("confirm", f"{eu.url}/confirm?job={{{{ steps.eu.response.body.jobId }}}}"),
        rest("us", f"{us.url}/orders"),
    ]


async def run(store: Store, settings: Settings, tenant: str, order_id: str) -> dict[str, Any]:
    executors = {"consume-rest-api": RestStep(settings)}
    worker = Worker(store, executors, settings=settings)

    def ended() -> bool:
        state = orders.get_order(store, tenant, order_id)["execution"]["state"]
        return state in ("succeeded", "failed", "cancelled")

    await asyncio.wait_for(worker.run(until=ended), 30)
    await executors["consume-rest-api"].close()
    return orders.get_order(store, tenant, order_id)


def order_for(store: Store, tenant: str, data: dict[str, Any]) -> str:
    resource, _ = orders.create_order(store, tenant, {"lines": [], "data": data}, "f")
    return str(resource["id"])


async def test_a_choice_routes_be_and_us_orders_to_their_receivers(
    store: Store, receivers: tuple[Receiver, Receiver]
) -> None:
    eu, us = receivers
    settings = store.settings.with_(outbound_allow=("127.0.0.1",))
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", routing_flow(eu, us), "F")
    be = order_for(store, tenant, {"country": "BE"})
    american = order_for(store, tenant, {"country": "US"})

    be_order = await run(store, settings, tenant, be)
    us_order = await run(store, settings, tenant, american)

    assert [s.path for s in eu.seen] == ["/jobs", "/confirm"]
    assert [s.path for s in us.seen] == ["/orders"]
    assert be_order["steps"]["confirm"]["response"]["status"] == 200
    assert be_order["execution"]["state"] == "succeeded"
    assert be_order["steps"]["eu"]["response"] == {
        "status": 200,
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "content-length": "18",
            "x-request-id": "r1",
        },
        "body": {"jobId": "EU-42"},
    }
    # The choice ran as a step of its own, and says where it went.
    choice = be_order["execution"]["attempts"][0]
    assert (choice["stepDefinitionId"], choice["outcome"]) == ("route", "success")
    when = 'order.data.country in ["BE", "NL"]'
    assert choice["details"] == {"rule": 0, "when": when, "next": "eu"}
    assert us_order["execution"]["attempts"][0]["details"]["next"] == "us"
    assert "steps" not in eu.seen[0].body.decode()  # receivers get the order, not the outputs


async def test_the_job_id_reaches_the_next_request(
    store: Store, receivers: tuple[Receiver, Receiver]
) -> None:
    eu, us = receivers
    settings = store.settings.with_(outbound_allow=("127.0.0.1",))
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", routing_flow(eu, us), "F")
    await run(store, settings, tenant, order_for(store, tenant, {"country": "NL"}))
    assert [s.path for s in eu.seen] == ["/jobs", "/confirm"]
    assert QUERIES == ["", "job=EU-42"]


async def test_choices_between_steps_route_in_the_transition(store: Store) -> None:
    """a -> choice -> b, the choice evaluated on a's transition: no attempt of its own is
    queued, its route is recorded as an ended attempt and an event, and its status set."""
    flow = [
        {
            "stepDefinitionId": "a",
            "type": "test-script",
            "successStatus": "A",
            "options": {},
            "onSuccess": "big",
        },
        {
            "stepDefinitionId": "big",
            "type": "choice",
            "successStatus": "Routed",
            "options": {
                "rules": [{"when": "order.lines | length > 1", "next": "many"}],
                "otherwise": "one",
            },
        },
        {"stepDefinitionId": "many", "type": "test-script", "successStatus": "M", "options": {}},
        {"stepDefinitionId": "one", "type": "test-script", "successStatus": "O", "options": {}},
    ]
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", flow, "F")
    order_id = order_for(store, tenant, {})
    with test_steps.installed():
        worker = Worker(store, {"test-script": test_steps.ScriptStep(store.settings)})

        def ended() -> bool:
            return orders.get_order(store, tenant, order_id)["execution"]["state"] == "succeeded"

        await asyncio.wait_for(worker.run(until=ended), 30)
    order = orders.get_order(store, tenant, order_id)
    attempts = order["execution"]["attempts"]
    assert [(a["stepDefinitionId"], a["outcome"]) for a in attempts] == [
        ("a", "success"),
        ("big", "success"),
        ("one", "success"),
    ]
    assert attempts[1]["details"] == {"rule": None, "when": None, "next": "one"}
    assert attempts[1]["durationMs"] < 50
    assert [h["status"] for h in order["statusHistory"]] == ["A", "Routed", "O"]
    assert [a["visit"] for a in attempts] == [1, 2, 3]


async def test_a_missing_path_fails_the_choice_or_takes_its_error_path(store: Store) -> None:
    flow = [
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "onError": "fallback",
            "options": {
                "rules": [{"when": "order.data.rush == true", "next": "rush"}],
                "otherwise": "rush",
            },
        },
        {"stepDefinitionId": "rush", "type": "test-script", "successStatus": "R", "options": {}},
        {
            "stepDefinitionId": "fallback",
            "type": "test-script",
            "successStatus": "F",
            "options": {},
        },
    ]
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", flow, "F")
    order_id = order_for(store, tenant, {})  # no "rush" in data
    with test_steps.installed():
        worker = Worker(store, {"test-script": test_steps.ScriptStep(store.settings)})

        def ended() -> bool:
            state = orders.get_order(store, tenant, order_id)["execution"]["state"]
            return state in ("succeeded", "failed")

        await asyncio.wait_for(worker.run(until=ended), 30)
    order = orders.get_order(store, tenant, order_id)
    first, then = order["execution"]["attempts"]
    assert first["outcome"] == "error"
    assert first["error"]["type"] == "expression"
    assert "'order.data.rush' is undefined" in first["error"]["message"]
    assert then["stepDefinitionId"] == "fallback"
    assert order["execution"]["state"] == "failed"  # an error path ran: failed, as any step
