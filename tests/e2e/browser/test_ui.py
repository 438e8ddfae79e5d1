"""The operator's web UI in a real Chromium against a real ``fabflow serve``: what an operator
does in a day, from signing in to fixing a failed order, plus the orders page's weight."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow, Receiver

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PAGE_BUDGET = 300 * 1024


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def sign_in(page: Any, fabflow: Fabflow, path: str = "/orders") -> None:
    page.goto(fabflow.url + path)
    page.fill("#key", fabflow.key)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}*")


def rest_flow(flow_id: str, uri: str) -> dict[str, Any]:
    """Make the files, then POST the order to ``uri`` once (no retries: fail fast)."""
    return {
        "id": flow_id,
        "name": f"Print {flow_id}",
        "steps": [
            {
                "stepDefinitionId": "generate",
                "type": "generate-production-files",
                "successStatus": "Files ready",
                "options": {"fileFormat": "stl"},
                "onSuccess": "post",
            },
            {
                "stepDefinitionId": "post",
                "type": "consume-rest-api",
                "successStatus": "Sent to printer",
                "options": {"uri": uri},
                "retry": 1,
            },
        ],
    }


def new_order(fabflow: Fabflow, flow_id: str, external_id: str) -> dict[str, Any]:
    order = {
        "externalId": external_id,
        "flowId": flow_id,
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "lines": [
            {"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": "Ada"}}
        ],
    }
    with fabflow.api() as api:
        response = api.post("/api/orders", json=order)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def make_flow(fabflow: Fabflow, flow: dict[str, Any]) -> None:
    with fabflow.api() as api:
        response = api.post("/api/flows", json=flow)
        assert response.status_code == 201, response.text


def wait_ended(fabflow: Fabflow, order_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    with fabflow.api() as api:
        while time.monotonic() < deadline:
            order: dict[str, Any] = api.get(f"/api/orders/{order_id}").json()
            if order["execution"]["state"] in ("succeeded", "failed", "cancelled"):
                return order
            time.sleep(0.2)
    raise AssertionError(f"order {order_id} did not end in {seconds} s")


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_sign_in_with_a_key_then_sign_out(page: Any, fabflow: Fabflow) -> None:
    page.goto(fabflow.url + "/orders")
    page.wait_for_url("**/signin?next=%2Forders")
    page.fill("#key", "ffk_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("unknown or revoked")
    shot(page, "signin-refused")

    page.fill("#key", fabflow.key)
    page.click("button[type=submit]")
    page.wait_for_url("**/orders")
    expect(page.locator("#live")).to_have_text("Live")
    cookie = next(c for c in page.context.cookies() if c["name"] == "fabflow_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert fabflow.key not in json.dumps(page.context.cookies())

    page.click("text=Sign out")
    page.wait_for_url("**/signin")
    page.goto(fabflow.url + "/flows")
    page.wait_for_url("**/signin?next=%2Fflows")


def test_actions_need_the_sessions_csrf_token(page: Any, fabflow: Fabflow) -> None:
    sign_in(page, fabflow)
    script = """async (token) => {
        const headers = token ? {"X-CSRF-Token": token} : {};
        const r = await fetch("/api/orders/ord_nothing/cancel", {method: "POST", headers});
        return r.status;
    }"""
    assert page.evaluate(script, None) == 403
    assert page.evaluate(script, "forged") == 403
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    assert page.evaluate(script, token) == 404  # signed in and allowed: the order is unknown


def test_flow_with_a_typo_shows_the_problem_at_its_line_then_saves(
    page: Any, fabflow: Fabflow
) -> None:
    flow_id = unique("editor")
    steps = rest_flow(flow_id, "http://127.0.0.1:9/orders")["steps"]
    steps.append(
        {
            "stepDefinitionId": "spare",
            "type": "send-email",
            "successStatus": "Never",
            "options": {"recipients": ["shop@example.com"], "subject": "s", "message": "m"},
        }
    )
    steps[1]["onError"] = "apologise"
    steps.insert(
        2,
        {
            "stepDefinitionId": "apologise",
            "type": "send-email",
            "successStatus": "Failed",
            "options": {"recipients": ["shop@example.com"], "subject": "Sorry", "message": "x"},
        },
    )
    good = json.dumps({"name": "Edited in the browser", "steps": steps}, indent=2)
    typo = good.replace('"onSuccess": "post"', '"onSucess": "post"')
    typo_line = next(i for i, line in enumerate(typo.splitlines(), 1) if "onSucess" in line)

    sign_in(page, fabflow, "/flows/new")
    page.fill("#flow-id", flow_id)
    page.fill("#source", typo)
    problem = page.locator('#problems li.error[data-pointer="/steps/0/onSucess"]')
    expect(problem).to_contain_text(f"line {typo_line}")
    expect(problem).to_contain_text('did you mean "onSuccess"')
    expect(page.locator(f'#gutter div[data-line="{typo_line}"]')).to_have_class("error")
    problem.locator("button").click()
    caret_line = page.evaluate(
        "() => { const t = document.getElementById('source');"
        " return t.value.slice(0, t.selectionStart).split('\\n').length; }"
    )
    assert caret_line == typo_line
    shot(page, "flow-editor-typo")

    page.fill("#source", good)
    expect(page.locator("#check-status")).to_contain_text("Valid")
    diagram = page.locator("#diagram svg")
    expect(diagram.locator("g.node")).to_have_count(4)
    expect(diagram.locator("g.edge.success")).to_have_count(1)
    expect(diagram.locator("g.edge.error")).to_have_count(1)
    unreachable = diagram.locator('g.node[data-unreachable="true"]')
    expect(unreachable).to_have_attribute("data-step", "spare")
    expect(page.locator("#problems li.warning")).to_contain_text("spare")
    page.click("#save")
    page.wait_for_url(f"**/flows/{flow_id}?saved=1")
    expect(page.locator('#versions button[data-version="1"]')).to_be_visible()

    page.fill("#source", good.replace('"Files ready"', '"Files checked"'))
    expect(page.locator("#check-status")).to_contain_text("Valid")
    page.click("#save")
    expect(page.locator('#versions button[data-version="2"]')).to_be_visible()
    shot(page, "flow-editor-saved")
    with fabflow.api() as api:
        saved = api.get(f"/api/flows/{flow_id}").json()
    assert saved["currentVersion"] == 2
    assert saved["steps"][0]["onSuccess"] == "post"
    assert saved["steps"][0]["successStatus"] == "Files checked"


def test_an_order_reaches_its_final_status_live(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    flow_id = unique("live")
    make_flow(fabflow, rest_flow(flow_id, receiver.url))
    external_id = unique("LIVE")
    sign_in(page, fabflow)
    page.fill("#f-q", external_id)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#live")).to_have_text("Live")
    page.evaluate("() => { window.__sameDocument = true; }")

    order = new_order(fabflow, flow_id, external_id)
    row = page.locator(f'#orders tr[data-order-id="{order["id"]}"]')
    expect(row.locator("td.state")).to_contain_text("Succeeded", timeout=30_000)
    expect(row.locator("td.status")).to_have_text("Sent to printer")
    expect(page.locator("#more")).to_be_hidden()  # one order: no further page
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    succeeded = page.locator('#counts button[data-state="succeeded"] .n')
    assert int(succeeded.inner_text()) >= 1
    shot(page, "orders-live")


def test_a_failed_step_shows_its_reason_and_retry_fixes_it(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    flow_id = unique("fails")
    make_flow(fabflow, rest_flow(flow_id, receiver.url))
    receiver.status = 500
    external_id = unique("FAIL")
    order = new_order(fabflow, flow_id, external_id)
    sign_in(page, fabflow, f"/orders?q={external_id}")
    row = page.locator(f'#orders tr[data-order-id="{order["id"]}"]')
    expect(row).to_have_class(re.compile(r"\bfailed\b"), timeout=30_000)  # and "flash"
    expect(row.locator("td.state .badge")).to_contain_text("Failed")  # a word and an icon,
    expect(row.locator("td.state .badge .icon")).to_have_text("✖")  # not colour alone
    shot(page, "orders-failed")

    row.locator("a").click()
    page.wait_for_url(f"**/orders/{order['id']}")
    failure = page.locator("#failure")
    expect(failure).to_contain_text("post")
    expect(failure).to_contain_text("HTTP 500")
    failed = page.locator('#attempts li[data-outcome="error"]')
    expect(failed).to_have_attribute("data-step", "post")
    expect(failed.locator('[data-detail="httpStatus"] dd')).to_have_text("500")
    shot(page, "order-failed")

    receiver.status = 200
    page.evaluate("() => { window.__sameDocument = true; }")
    page.click("#retry")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=30_000)
    expect(page.locator('[data-fact="Status"]')).to_have_text("Sent to printer")
    expect(page.locator("#failure")).to_have_count(0)
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert len(receiver.hits) == 2


def test_download_a_production_file_with_the_apis_checksum(
    page: Any, fabflow: Fabflow, receiver: Receiver, tmp_path: Path
) -> None:
    flow_id = unique("files")
    make_flow(fabflow, rest_flow(flow_id, receiver.url))
    order = wait_ended(fabflow, new_order(fabflow, flow_id, unique("FILE"))["id"])
    listed = order["files"][0]
    sign_in(page, fabflow, f"/orders/{order['id']}")
    card = page.locator(f'#files article[data-name="{listed["name"]}"]')
    expect(card).to_contain_text(f"{listed['triangles']:,}")
    image = card.locator("img")
    expect(image).to_be_visible()
    loaded = "img => img.complete && img.naturalWidth > 0"
    page.wait_for_function(loaded, arg=image.element_handle())
    with page.expect_download() as download_info:
        card.locator("a.button").click()
    saved = tmp_path / listed["name"]
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename == listed["name"]
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == listed["sha256"]
    shot(page, "order-files")


def test_preview_a_product_from_the_catalogue(page: Any, fabflow: Fabflow) -> None:
    sign_in(page, fabflow, "/products")
    card = page.locator("#product-nameplate")
    card.locator('input[name="width"]').fill("5")
    card.locator("button[type=submit]").click()
    expect(card.locator('input[name="width"]')).to_have_attribute("aria-invalid", "true")
    expect(card.locator("#p-nameplate-width-error")).to_contain_text("20")  # the minimum

    card.locator('input[name="text"]').fill("Grace")
    card.locator('input[name="width"]').fill("100")
    card.locator("button[type=submit]").click()
    figure = card.locator("figure.part")
    expect(figure.locator("img")).to_be_visible(timeout=30_000)
    expect(figure.locator('[data-stat="size"]')).to_contain_text("100 ×")
    triangles = int(figure.locator('[data-stat="triangles"]').inner_text().replace(",", ""))
    assert triangles > 100
    expect(figure.locator('[data-stat="volume"]')).to_contain_text("mm³")
    shot(page, "product-preview")


def test_the_orders_page_weighs_under_300_kb(page: Any, fabflow: Fabflow) -> None:
    """Everything the orders page loads on a cold cache (HTML, CSS, JS, API answers, headers
    included); the live event stream never ends, so it is not counted."""
    sign_in(page, fabflow)
    page.goto("about:blank")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    loaded: dict[str, int] = {}

    def count(request: Any) -> None:
        sizes = request.sizes()
        loaded[request.url] = sizes["responseBodySize"] + sizes["responseHeadersSize"]

    page.on("requestfinished", count)
    page.goto(fabflow.url + "/orders")
    expect(page.locator("#live")).to_have_text("Live")
    expect(page.locator("#counts button")).to_have_count(7)  # "all" and one per execution state
    page.wait_for_timeout(500)
    total = sum(loaded.values())
    print(f"orders page: {len(loaded)} requests, {total} bytes")
    for url, size in sorted(loaded.items()):
        print(f"  {size:>7}  {url}")
    assert all(size > 0 for size in loaded.values()), "a response came from a cache"
    assert sum(1 for url in loaded if "/static/" in url) == 3  # app.css, app.js, orders.js
    assert total < PAGE_BUDGET, f"orders page loads {total} bytes (budget {PAGE_BUDGET})"


def test_tablet_layout_and_keyboard_reach(page: Any, fabflow: Fabflow) -> None:
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, fabflow)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px on a tablet"
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.textContent.trim()"))
    assert "Flows" in reached and "Products" in reached and "Sign out" in reached
    shot(page, "orders-tablet")
