"""Saving the same flow again adds no version (a deploy script that PUTs every flow on each
release, or each `fabflow run`, must not pile up identical versions); a change does."""

from __future__ import annotations

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import rest_flow


async def test_the_same_flow_again_adds_no_version(acme: httpx.AsyncClient) -> None:
    flow = rest_flow("https://example.com/orders")
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    again = await acme.put("/api/flows/shop", json=flow)
    assert again.status_code == 200 and again.json()["currentVersion"] == 1
    flow["steps"][0]["successStatus"] = "Posted"
    changed = await acme.put("/api/flows/shop", json=flow)
    assert changed.json()["currentVersion"] == 2
    renamed = await acme.put("/api/flows/shop", json={**flow, "name": "Shop 2"})
    assert renamed.json()["currentVersion"] == 3
    versions = (await acme.get("/api/flows/shop/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]


def test_saving_an_archived_flow_unchanged_restores_it(api_store: Store) -> None:
    tenant = api_store.ensure_tenant("acme")
    steps = rest_flow("https://example.com/orders")["steps"]
    assert api_store.save_flow(tenant, "shop", steps, "Shop") == 1
    api_store.archive_flow(tenant, "shop")
    assert api_store.save_flow(tenant, "shop", steps, "Shop") == 1
    assert api_store.get_flow(tenant, "shop")["archived"] is False
