"""The order's ``run``: each step of its flow version with its state and attempt count, and the
edges the execution took, as an operator's drawing of the run reads them."""

from __future__ import annotations

from typing import Any

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, run_until_ended


def routed_flow(url: str) -> dict[str, Any]:
    """route (choice) -> post (2 attempts) -> ship; post's error path -> alert."""
    rest = {"type": "consume-rest-api", "options": {"uri": url}}
    rules = {"rules": [{"when": 'order.data.country == "BE"', "next": "post"}], "otherwise": "ship"}
    return {
        "id": "routed",
        "name": "Routed",
        "steps": [
            {"stepDefinitionId": "route", "type": "choice", "options": rules},
            {
                **rest,
                "stepDefinitionId": "post",
                "successStatus": "Posted",
                "retry": {"maxAttempts": 2, "initialDelay": 10},
                "onSuccess": "ship",
                "onError": "alert",
            },
            {**rest, "stepDefinitionId": "ship", "successStatus": "Shipped", "retry": 1},
            {**rest, "stepDefinitionId": "alert", "successStatus": "Failed", "retry": 1},
        ],
    }


def states(order: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {s["stepDefinitionId"]: (s["state"], s["attempts"]) for s in order["run"]["steps"]}


def edges(order: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["from"], e["to"], e["kind"]) for e in order["run"]["path"]]


async def test_the_run_shows_each_steps_state_and_the_path_taken(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=routed_flow(receiver.url))).status_code == 201
    receiver.fail = 2  # post fails twice: its error path runs
    created = await acme.post("/api/orders", json={"flowId": "routed", "data": {"country": "BE"}})
    order_id = created.json()["id"]
    new = (await acme.get(f"/api/orders/{order_id}")).json()
    assert states(new)["route"] == ("queued", 1)
    assert states(new)["post"] == ("not_reached", 0)
    assert new["run"]["path"] == []

    failed = await run_until_ended(api_store, acme, order_id)
    assert states(failed) == {
        "route": ("succeeded", 1),
        "post": ("failed", 2),
        "ship": ("not_reached", 0),
        "alert": ("succeeded", 1),
    }
    assert edges(failed) == [("route", "post", "choice"), ("post", "alert", "error")]

    rerun = await acme.post(f"/api/orders/{order_id}/rerun", json={"stepDefinitionId": "post"})
    assert states(rerun.json())["post"] == ("queued", 3)  # a new run's first attempt
    done = await run_until_ended(api_store, acme, order_id)
    assert states(done) == {
        "route": ("succeeded", 1),
        "post": ("succeeded", 3),
        "ship": ("succeeded", 1),
        "alert": ("succeeded", 1),
    }
    # The rerun's jump (alert -> post) is no edge of the flow: it is not drawn as one.
    assert edges(done) == [
        ("route", "post", "choice"),
        ("post", "alert", "error"),
        ("post", "ship", "success"),
    ]


async def test_the_list_leaves_the_run_out(acme: httpx.AsyncClient, receiver: Receiver) -> None:
    assert (await acme.post("/api/flows", json=routed_flow(receiver.url))).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "routed"})).json()["id"]
    listed = (await acme.get("/api/orders")).json()["orders"]
    assert [o["id"] for o in listed] == [order_id]
    assert "run" not in listed[0]
    assert "run" in (await acme.get(f"/api/orders/{order_id}")).json()
