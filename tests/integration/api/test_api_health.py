"""Order health through the real app on a real store: a flow's deadline, a step failing and
being retried, Retry now, the unhealthy filter and counts, and /metrics."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api.conftest import Receiver, rest_flow


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
