"""A preview flood from one tenant cannot starve the API: waiting previews hold no thread, one
tenant has a bounded share (then 429 with Retry-After), and another tenant's health checks and
previews still answer."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

BIG = {"text": "Flood", "width": 250, "height": 120, "thickness": 10, "hole": True}


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
async def test_one_tenants_preview_flood_leaves_the_api_to_others(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    flood = [
        asyncio.create_task(acme.post("/api/products/nameplate/preview", json=BIG))
        for _ in range(60)
    ]
    await asyncio.sleep(0.05)  # the flood is in
    started = time.monotonic()
    health = await globex.get("/api/health")
    health_s = time.monotonic() - started
    other = await globex.post("/api/products/nameplate/preview", json={"text": "B"})
    answers = await asyncio.gather(*flood)
    assert health.status_code == 200 and health_s < 1.0, health_s
    assert other.status_code == 200, other.text
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 4 and statuses.count(429) >= 40, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["code"] == "too_many_requests"
