"""Order health in the UI: an order whose receiver keeps failing shows as unhealthy, with the
reason and the next attempt's time, in the list and on its page; Retry now skips the backoff."""

from __future__ import annotations

from typing import Any

from .conftest import shot
from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, new_order, rest_flow, sign_in, unique, wait_ended


def test_an_unhealthy_order_shows_why_and_retry_now_skips_the_backoff(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    flow_id = unique("flaky")
    flow = rest_flow(flow_id, receiver.url)
    post = next(s for s in flow["steps"] if s["stepDefinitionId"] == "post")
    post["retry"] = {"maxAttempts": 5, "initialDelay": 600_000}  # a 10-minute backoff
    make_flow(fabflow, flow)
    receiver.status = 500
    external_id = unique("SICK")
    order = new_order(fabflow, flow_id, external_id)

    sign_in(page, fabflow, f"/orders?q={external_id}")
    row = page.locator(f'#orders tr[data-order-id="{order["id"]}"]')
    expect(row).to_have_attribute("data-health", "unhealthy", timeout=30_000)
    expect(row.locator(".h-unhealthy")).to_contain_text("Unhealthy")
    expect(row.locator(".warn-reason")).to_contain_text("retrying: attempt 2 of 5")
    expect(page.locator("#unhealthy-count .n")).not_to_have_text("0")
    shot(page, "orders-unhealthy")

    row.locator("a").click()
    page.wait_for_url(f"**/orders/{order['id']}")
    health = page.locator("#health")
    expect(health).to_contain_text("Unhealthy")
    expect(health).to_contain_text("HTTP 500")
    expect(health).to_contain_text("Next attempt")
    shot(page, "order-unhealthy")

    receiver.status = 200  # the receiver is fixed: no need to wait ten minutes
    page.click("#retry-now")
    done = wait_ended(fabflow, order["id"], seconds=20)
    assert done["execution"]["state"] == "succeeded"
    assert [
        a["attempt"] for a in done["execution"]["attempts"] if a["stepDefinitionId"] == "post"
    ] == [1, 2]
    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=10_000)
    expect(page.locator("#health")).to_have_count(0)
