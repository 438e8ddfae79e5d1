"""Orders that wait for a person, in a real Chromium against a real ``fabflow serve``: the
"Waiting for you" filter finds them, and the order page confirms or rejects them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, new_order, sign_in, unique, wait_ended

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def review_flow(flow_id: str, uri: str) -> dict[str, Any]:
    """A person checks the order; confirmed, it goes to the printer, rejected, to the shop."""
    send = {"type": "consume-rest-api", "options": {"uri": uri}, "retry": 1}
    check = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {
            "prompt": "Does “{{ order.lines[0].parameters.text }}” fit the plate?",
            "assignees": ["ops@example.com"],
        },
        "onSuccess": "print",
        "onError": "tell-shop",
    }
    return {
        "id": flow_id,
        "name": f"Reviewed {flow_id}",
        "steps": [
            check,
            {"stepDefinitionId": "print", "successStatus": "Sent to printer", **send},
            {"stepDefinitionId": "tell-shop", "successStatus": "Refused", **send},
        ],
    }


def waiting_order(fabflow: Fabflow, receiver: Receiver, prefix: str) -> dict[str, Any]:
    """A new order, once it waits for a confirmation."""
    flow_id = unique(prefix)
    make_flow(fabflow, review_flow(flow_id, receiver.url))
    order = new_order(fabflow, flow_id, unique(prefix.upper()))
    deadline = time.monotonic() + 30
    with fabflow.api() as api:
        while time.monotonic() < deadline:
            found: dict[str, Any] = api.get(f"/api/orders/{order['id']}").json()
            if found["execution"]["state"] == "waiting":
                return found
            time.sleep(0.2)
    raise AssertionError(f"order {order['id']} did not wait in 30 s")


def test_waiting_for_you_lists_the_order_and_confirm_continues_it(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    order = waiting_order(fabflow, receiver, "confirm")
    sign_in(page, fabflow)
    page.check("#f-waiting")
    page.wait_for_url("**/orders?waitingFor=confirmation")
    row = page.locator(f'#orders tr[data-order-id="{order["id"]}"]')
    expect(row.locator("td.state")).to_contain_text("Waiting")
    states = page.locator("#orders tbody tr").evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert set(states) == {"waiting"}, states
    shot(page, "orders-waiting-for-you")

    row.locator("a").click()
    page.wait_for_url(f"**/orders/{order['id']}")
    panel = page.locator("#confirmation")
    expect(panel.locator("#confirmation-prompt")).to_have_text("Does “Ada” fit the plate?")
    expect(panel).to_contain_text("told ops@example.com")
    shot(page, "order-waiting-for-confirmation")
    page.click("#confirm-order")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=30_000)
    expect(page.locator("#confirmation")).to_have_count(0)
    expect(page.locator('[data-fact="Status"]')).to_have_text("Sent to printer")
    who = "web session, key key_"  # the key's id, as `fabflow apikey list` shows it
    resolution = page.locator('#attempts li[data-step="check"] .resolution')
    expect(resolution).to_contain_text(f"Confirmed by {who}")

    done = wait_ended(fabflow, order["id"])
    assert done["execution"]["attempts"][0]["wait"]["resolution"]["by"].startswith(who)
    assert len(receiver.hits) == 1


def test_reject_asks_for_a_comment_and_takes_the_error_path(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    order = waiting_order(fabflow, receiver, "reject")
    sign_in(page, fabflow, f"/orders/{order['id']}")
    page.click("#reject-order")
    dialog = page.locator("#reject")
    expect(dialog).to_be_visible()
    page.click("#reject-ok")  # no comment yet: the form asks for one
    expect(dialog).to_be_visible()
    page.fill("#reject-comment", "The text is too long for the plate")
    shot(page, "order-reject-dialog")
    page.click("#reject-ok")
    expect(dialog).to_be_hidden()
    expect(page.locator("#state")).to_contain_text("Failed", timeout=30_000)
    failure = page.locator("#failure")
    expect(failure).to_contain_text("check")
    expect(failure).to_contain_text("Rejected: The text is too long for the plate")
    expect(failure.locator(".error-type")).to_have_attribute("title", "Error type: rejected")
    expect(page.locator('[data-fact="Status"]')).to_have_text("Refused")
    rejected = page.locator('#attempts li[data-step="check"]')
    expect(rejected.locator(".resolution")).to_contain_text("Rejected by web session")

    done = wait_ended(fabflow, order["id"])
    assert done["execution"]["lastError"]["type"] == "rejected"


def test_keep_waiting_leaves_the_order_as_it_was(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    order = waiting_order(fabflow, receiver, "keep")
    sign_in(page, fabflow, f"/orders/{order['id']}")
    page.click("#reject-order")
    page.click("#reject button[value=cancel]")
    expect(page.locator("#reject")).to_be_hidden()
    page.click("#confirm-order")
    page.keyboard.press("Escape")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#state")).to_contain_text("Waiting")
    expect(page.locator("#cancel")).to_be_enabled()  # a wait for a person may be cancelled
    expect(page.locator("#rerun")).to_be_disabled()
    assert "null" not in page.locator("#order").inner_text()
    with fabflow.api() as api:
        still = api.get(f"/api/orders/{order['id']}").json()
    assert still["execution"]["state"] == "waiting"
    assert receiver.hits == []
