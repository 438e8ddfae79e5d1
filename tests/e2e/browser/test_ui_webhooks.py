"""The Webhooks page: add a webhook (its secret shown once), see its deliveries with status,
latency and answer, and send a failed one again once the receiver is fixed."""

from __future__ import annotations

import time
from typing import Any

from .conftest import shot
from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, new_order, rest_flow, sign_in, unique, wait_ended


def test_add_a_webhook_read_its_deliveries_and_send_one_again(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    shop = Receiver(status=400).start()  # the shop's webhook receiver refuses at first
    try:
        sign_in(page, fabflow, "/webhooks")
        expect(page.locator('nav a[href="/webhooks"]')).to_have_attribute("aria-current", "page")
        page.fill("#webhook-url", shop.url)
        for other in ("order-status_changed", "order-waiting", "order-unhealthy"):
            page.uncheck(f"#event-{other}")
        page.click("#webhook-add")
        expect(page.locator("#new-secret-value")).to_contain_text("whsec_")
        row = page.locator("#webhooks tbody tr", has_text=shop.url)
        expect(row).to_contain_text("order.created, order.succeeded")

        flow_id = unique("hooked")
        make_flow(fabflow, rest_flow(flow_id, receiver.url))
        order = wait_ended(fabflow, new_order(fabflow, flow_id, unique("HOOK"))["id"])
        assert order["execution"]["state"] == "succeeded"
        deadline = time.monotonic() + 20
        while len(shop.hits) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)

        row.get_by_role("button", name="Deliveries").click()
        failed = page.locator("#deliveries tbody tr", has_text="order.created")
        expect(failed).to_have_attribute("data-state", "failed")
        expect(failed).to_contain_text("400")
        expect(failed).to_contain_text("not retried")
        shot(page, "webhook-deliveries")

        shop.status = 200  # fixed: send it again by hand
        failed.get_by_role("button", name="Send again").click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row.get_by_role("button", name="Deliveries").click()
            if failed.get_attribute("data-state") == "succeeded":
                break
            time.sleep(0.3)
        expect(failed).to_have_attribute("data-state", "succeeded")
        expect(failed).to_contain_text("200")

        row.get_by_role("button", name=f"Delete the webhook to {shop.url}").click()
        page.click("#confirm-ok")
        expect(page.locator("#webhooks tbody tr", has_text=shop.url)).to_have_count(0)
    finally:
        shop.stop()
