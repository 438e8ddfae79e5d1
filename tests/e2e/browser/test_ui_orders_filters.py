"""The orders list trusted from a shared link: ``/orders?state=waiting&flowId=F`` opened cold
shows only F's orders with F in the box (the flow filter used to be set before the flows were
listed, and dropped), and a filter value the list does not know is said, not ignored."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .support import Fabflow
from .test_ui import expect, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _waiting_flow(flow_id: str) -> dict[str, Any]:
    check = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {"prompt": "Looks right?"},
    }
    return {"id": flow_id, "name": flow_id, "steps": [check]}


def test_a_shared_filter_link_opened_cold_keeps_its_flow(page: Any, fabflow: Fabflow) -> None:
    mine, other = unique("erp"), unique("mes")
    with fabflow.api() as api:
        for flow_id in (mine, other):
            assert api.post("/api/flows", json=_waiting_flow(flow_id)).status_code == 201
        ids = [api.post("/api/orders", json={"flowId": mine}).json()["id"] for _ in range(2)]
        api.post("/api/orders", json={"flowId": other})
        deadline = time.monotonic() + 20
        while not all(_state(api, i) == "waiting" for i in ids):  # the worker parks them
            assert time.monotonic() < deadline
            time.sleep(0.05)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?state=waiting&flowId={mine}")
    expect(page.locator("#f-flow")).to_have_value(mine)
    rows = page.locator("#orders tbody tr[data-order-id]")
    expect(rows).to_have_count(2)
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.orderId)")) == sorted(ids)


def _state(api: Any, order_id: str) -> str:
    return str(api.get(f"/api/orders/{order_id}").json()["execution"]["state"])


def test_an_unknown_filter_value_is_said(page: Any, fabflow: Fabflow) -> None:
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?state=bogus")
    expect(page.locator("#toast")).to_contain_text("state=bogus")
