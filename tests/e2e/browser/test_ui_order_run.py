"""The order page in a real Chromium against a real ``fabflow serve``, at a laptop's and a
phone's width: the run drawn on the order's flow (a click on a step shows its attempts), the
operators' actions in the timeline with who acted, and the rerun dialog that fixes the order
first (the flow's latest version, a data patch) and warns before an error path's step."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, sign_in, unique, wait_ended
from .test_ui_confirmations import waiting_order

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(SIZES))
def sized(page: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The page at a laptop's or a phone's size; no console error may appear on it."""
    page.set_viewport_size(SIZES[request.param])
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    assert not errors, f"console errors: {errors}"


@pytest.fixture
def helpdesk() -> Iterator[Receiver]:
    """A second receiver, for the error path: it always answers 200."""
    rec = Receiver().start()
    yield rec
    rec.stop()


def shop_flow(flow_id: str, erp: str, helpdesk: str, status: str = "Sent") -> dict[str, Any]:
    """post to the ERP, then ship; a failed post tells the helpdesk instead."""
    rest = {"type": "consume-rest-api", "retry": 1}
    return {
        "id": flow_id,
        "name": f"Shop {flow_id}",
        "steps": [
            {
                **rest,
                "stepDefinitionId": "post",
                "successStatus": status,
                "options": {"uri": erp},
                "onSuccess": "ship",
                "onError": "alert",
            },
            {
                **rest,
                "stepDefinitionId": "ship",
                "successStatus": "Shipped",
                "options": {"uri": erp},
            },
            {
                **rest,
                "stepDefinitionId": "alert",
                "successStatus": "Failed",
                "options": {"uri": helpdesk},
            },
        ],
    }


def failed_order(fabflow: Fabflow, receiver: Receiver, helpdesk: Receiver) -> dict[str, Any]:
    """An order whose post failed (the ERP answers 500) and whose error path ran."""
    flow_id = unique("run")
    make_flow(fabflow, shop_flow(flow_id, receiver.url, helpdesk.url))
    receiver.status = 500
    order = {"externalId": unique("RUN"), "flowId": flow_id, "data": {"name": "Ada Lovelac"}}
    with fabflow.api() as api:
        created = api.post("/api/orders", json=order)
        assert created.status_code == 201, created.text
    return wait_ended(fabflow, created.json()["id"])


def node(page: Any, step: str) -> Any:
    return page.locator(f'#run-diagram .node[data-step="{step}"]')


def fits(page: Any) -> None:
    """Nothing makes the page wider than the screen."""
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= page.viewport_size["width"], f"the page is {wide} px wide"


def test_the_run_is_drawn_and_a_step_shows_its_attempts(
    sized: Any, fabflow: Fabflow, receiver: Receiver, helpdesk: Receiver
) -> None:
    page = sized
    order = failed_order(fabflow, receiver, helpdesk)
    sign_in(page, fabflow, f"/orders/{order['id']}")

    expect(node(page, "post")).to_have_attribute("data-state", "failed")
    expect(node(page, "post")).to_contain_text("✖ failed, 1 attempt")  # a word, not colour alone
    shown = """n => { const [a, b] = [n.getBoundingClientRect(),
                   n.closest('#run-diagram').getBoundingClientRect()];
                   return a.left >= b.left && a.right <= b.right; }"""
    assert node(page, "post").evaluate(shown), "the failed step is scrolled out of sight"
    expect(node(page, "alert")).to_have_attribute("data-state", "succeeded")
    expect(node(page, "alert")).to_contain_text("✓ succeeded")
    expect(node(page, "ship")).to_have_attribute("data-state", "not_reached")
    taken = page.locator('#run-diagram .edge[data-from="post"][data-to="alert"]')
    expect(taken).to_have_attribute("data-taken", "true")
    skipped = page.locator('#run-diagram .edge[data-from="post"][data-to="ship"]')
    expect(skipped).to_have_attribute("data-taken", "false")
    fills = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#run-diagram .node')]
             .map(n => [n.dataset.step, n.querySelector('rect').getAttribute('fill')]))"""
    )
    assert fills["post"] != fills["alert"] != fills["ship"]
    fits(page)

    node(page, "post").click()
    attempt = page.locator('#attempts li[data-step="post"]')
    expect(attempt).to_have_class("error picked")
    expect(attempt).to_be_focused()
    expect(attempt).to_be_in_viewport()
    expect(page.locator('#attempts li[data-step="alert"].picked')).to_have_count(0)
    expect(page.locator("#run-note")).to_contain_text("1 attempt")

    node(page, "ship").focus()
    page.keyboard.press("Enter")  # a keyboard reaches the steps too
    expect(page.locator("#run-note")).to_contain_text("“ship” has not run")
    shot(page, f"order-run-{page.viewport_size['width']}")


def test_rerun_on_the_latest_version_with_fixed_data(
    sized: Any, fabflow: Fabflow, receiver: Receiver, helpdesk: Receiver
) -> None:
    page = sized
    order = failed_order(fabflow, receiver, helpdesk)
    flow_id = order["flowId"]
    with fabflow.api() as api:
        fixed = shop_flow(flow_id, receiver.url, helpdesk.url, status="Sent again")
        assert api.put(f"/api/flows/{flow_id}", json=fixed).json()["currentVersion"] == 2
    receiver.status = 200
    sign_in(page, fabflow, f"/orders/{order['id']}")
    expect(page.locator("#order-data")).to_contain_text('"name": "Ada Lovelac"')
    expect(page.locator("#flow-link")).to_have_attribute("href", f"/flows/{flow_id}")
    expect(page.locator('[data-fact="Flow"]')).to_contain_text("version 1 (latest: 2)")

    failed_response = page.locator('#attempts li[data-step="post"] details.response').first
    failed_response.locator("summary").click()  # stays open while the page refreshes live

    page.click("#rerun")
    dialog = page.locator("#rerun-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#rerun-step")).to_have_value("post")  # the step that failed
    page.select_option("#rerun-version", "latest")
    page.fill("#rerun-data", '{"name": "Ada Lovelace",}')
    page.click("#rerun-ok")
    expect(page.locator("#rerun-problem")).to_contain_text("not valid JSON")
    expect(dialog).to_be_visible()  # nothing sent
    page.fill("#rerun-data", json.dumps({"name": "Ada Lovelace", "note": "fixed"}))
    expect(page.locator("#rerun-patch")).to_contain_text('{"name":"Ada Lovelace","note":"fixed"}')
    page.click("#rerun-ok")
    expect(dialog).to_be_hidden()

    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=30_000)
    expect(page.locator('[data-fact="Status"]')).to_have_text("Shipped")
    expect(page.locator("#order-data")).to_contain_text('"name": "Ada Lovelace"')
    expect(page.locator('[data-fact="Flow"]')).to_contain_text("version 2")
    event = page.locator('#attempts li.event[data-kind="rerun"]')
    expect(event).to_contain_text("Rerun from post")
    expect(event).to_contain_text("by web session, key")
    expect(event).to_contain_text("Flow version 1 → 2")
    expect(event).to_contain_text('Data patch: {"name":"Ada Lovelace","note":"fixed"}')
    # The rerun's attempts come after it, as run 2.
    after = page.locator('#attempts li.event[data-kind="rerun"] ~ li[data-step="post"]')
    expect(after).to_contain_text("run 2 · attempt 1")
    expect(after).to_have_attribute("data-outcome", "success")
    expect(node(page, "ship")).to_have_attribute("data-state", "succeeded")
    expect(failed_response).to_have_attribute("open", "")
    expect(failed_response).to_contain_text("receiver is down")
    fits(page)
    shot(page, f"order-rerun-{page.viewport_size['width']}")

    with fabflow.api() as api:
        done = api.get(f"/api/orders/{order['id']}").json()
    assert done["flowVersion"] == 2
    assert done["data"] == {"name": "Ada Lovelace", "note": "fixed"}

    # The case: the error handler of an order that succeeded.
    page.click("#rerun")
    page.select_option("#rerun-step", "alert")
    expect(page.locator("#rerun-warning")).to_contain_text("ends the order failed")
    expect(page.locator("#rerun-warning")).to_contain_text("although it succeeded")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_rerun_warns_before_a_step_only_an_error_path_reaches(
    sized: Any, fabflow: Fabflow, receiver: Receiver, helpdesk: Receiver
) -> None:
    page = sized
    order = failed_order(fabflow, receiver, helpdesk)
    sign_in(page, fabflow, f"/orders/{order['id']}")
    page.click("#rerun")
    warning = page.locator("#rerun-warning")
    expect(warning).to_be_hidden()
    expect(page.locator("#rerun-ok")).to_have_text("Rerun")

    page.select_option("#rerun-step", "alert")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("“alert” runs only when a step fails")
    expect(warning).to_contain_text("“Failed”")  # the status it would set
    expect(page.locator("#rerun-ok")).to_have_text("Rerun anyway")
    fits(page)
    shot(page, f"order-rerun-warning-{page.viewport_size['width']}")

    patch = page.evaluate(
        "() => ffRerun.mergePatch({a: 1, b: {c: 1, d: 2}, f: [1]}, {b: {c: 1}, e: 3, f: [2]})"
    )
    assert patch == {"a": None, "b": {"d": None}, "e": 3, "f": [2]}  # only what changed
    page.click("#rerun-dialog button[value=cancel]")
    expect(page.locator("#rerun-dialog")).to_be_hidden()
    with fabflow.api() as api:
        events = api.get(f"/api/orders/{order['id']}/events").json()["events"]
    assert not any(e["kind"] == "rerun" for e in events)


def test_the_timeline_shows_who_cancelled_retried_and_confirmed(
    sized: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    page = sized
    receiver.status = 200
    order = waiting_order(fabflow, receiver, "timeline")
    sign_in(page, fabflow, f"/orders/{order['id']}")
    expect(node(page, "check")).to_have_attribute("data-state", "waiting")

    page.click("#cancel")
    page.click("#confirm-ok")
    cancelled = page.locator('#attempts li.event[data-kind="cancelled"]')
    expect(cancelled).to_contain_text("by web session, key key_")
    first = page.locator('#attempts li[data-step="check"]').first
    expect(first).to_have_attribute("data-outcome", "cancelled")
    expect(first.locator(".badge")).to_have_text("⊘Cancelled")
    outbox = first.locator('[data-detail="outbox"] dd')  # the mail's file, not the server's path
    expect(outbox).to_have_text(re.compile(r"^[^/]+\.eml$"))
    dot = "li => getComputedStyle(li, '::before').backgroundColor"
    assert first.evaluate(dot) != "rgb(17, 99, 41)", "a cancelled attempt has a green dot"

    page.click("#retry")
    page.click("#confirm-ok")
    retried = page.locator('#attempts li.event[data-kind="retried"]')
    expect(retried).to_contain_text("Retried check")
    expect(retried).to_contain_text("Run 2")
    expect(node(page, "check")).to_have_attribute("data-state", "waiting")
    page.click("#confirm-order")
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=30_000)
    confirmed = page.locator('#attempts li.event[data-kind="step_succeeded"]')
    expect(confirmed).to_contain_text("Confirmed check")
    expect(confirmed).to_contain_text("by web session, key key_")

    rows = page.locator("#attempts > li").evaluate_all(
        "items => items.map(li => li.dataset.kind || `${li.dataset.step} ${li.dataset.run}`)"
    )
    assert rows == ["check 1", "cancelled", "retried", "check 2", "step_succeeded", "print 2"]
    expect(page.locator('#attempts li[data-step="check"]').nth(1)).to_contain_text(
        "run 2 · attempt 1"
    )
    expect(node(page, "print")).to_have_attribute("data-state", "succeeded")
    confirmed_edge = page.locator('#run-diagram .edge[data-from="check"][data-to="print"]')
    expect(confirmed_edge).to_have_attribute("data-taken", "true")
    fits(page)
    shot(page, f"order-timeline-{page.viewport_size['width']}")
