"""The orders list an operator trusts, at a laptop's 1440x900 and a phone's 390x844: columns
that sort (and say so), a date range, times as "3 min ago" with the exact time on hover and
kept current, one line per order (20 and more on a screen), a status typed in any case, a
search without accents, bulk cancel with one confirmation, and a card per order on a phone
with Status and Execution in sight and nothing to scroll sideways."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _waiting_flow(flow_id: str) -> dict[str, Any]:
    check = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {"prompt": "Looks right?"},
    }
    return {"id": flow_id, "name": flow_id, "steps": [check]}


def _seed(fabflow: Fabflow, tag: str, flows: list[str], count: int, **order: Any) -> list[str]:
    """``count`` orders spread over ``flows`` (made here), external ids ``<tag>-<n>``,
    parked by the worker on a person's confirmation."""
    with fabflow.api() as api:
        for flow_id in flows:
            assert api.post("/api/flows", json=_waiting_flow(flow_id)).status_code == 201
        ids = []
        for n in range(count):
            body = {"flowId": flows[n % len(flows)], "externalId": f"{tag}-{n}", **order}
            created = api.post("/api/orders", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        deadline = time.monotonic() + 30
        while _waiting(api, tag) < count:
            assert time.monotonic() < deadline, "the worker did not park the orders"
            time.sleep(0.1)
    return ids


def _waiting(api: Any, tag: str) -> int:
    page = api.get("/api/orders", params={"q": tag, "state": "waiting", "limit": 200}).json()
    return len(page["orders"])


def _row_ids(page: Any) -> list[str]:
    rows = page.locator("#orders tbody tr[data-order-id]")
    return list(rows.evaluate_all("rs => rs.map(r => r.dataset.orderId)"))


def _column(page: Any, cell: str) -> list[str]:
    found = page.locator(f"#orders tbody td.{cell}").all_inner_texts()
    return [text.strip() for text in found]


def test_columns_sort_and_say_how(page: Any, fabflow: Fabflow) -> None:
    tag = unique("srt")
    b_flow, a_flow = f"b-{tag}", f"a-{tag}"
    ids = _seed(fabflow, tag, [b_flow, a_flow], 4)
    page.set_viewport_size(DESKTOP)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    expect(page.locator("#orders tbody tr[data-order-id]")).to_have_count(4)
    assert _row_ids(page) == sorted(ids, reverse=True)  # newest first

    flow_header = page.locator("#orders th[data-sort=flow]")
    flow_header.get_by_role("button").click()
    expect(flow_header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#orders tbody td.flow").first).to_contain_text(a_flow)
    flows = _column(page, "flow")
    assert flows == sorted(flows) and flows[0].startswith(a_flow), flows
    assert "sort=flow" in page.url

    flow_header.get_by_role("button").click()
    expect(flow_header).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#orders tbody td.flow").first).to_contain_text(b_flow)
    assert "sort=-flow" in page.url

    page.goto(f"{fabflow.url}/orders?q={tag}&sort=created")  # a shared link keeps its sort
    expect(page.locator("#orders th[data-sort=created]")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.locator("#orders tbody tr[data-order-id]").first).to_have_attribute(
        "data-order-id", ids[0]
    )
    assert _row_ids(page) == ids


def test_a_date_range_keeps_the_days_chosen(page: Any, fabflow: Fabflow) -> None:
    tag = unique("day")
    _seed(fabflow, tag, [f"f-{tag}"], 2)
    page.set_viewport_size(DESKTOP)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    rows = page.locator("#orders tbody tr[data-order-id]")
    expect(rows).to_have_count(2)
    today = page.evaluate("() => new Date().toLocaleDateString('sv')")  # the browser's day
    tomorrow = (date.fromisoformat(today) + timedelta(days=1)).isoformat()
    page.fill("#f-from", tomorrow)
    expect(rows).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert f"from={tomorrow}" in page.url
    page.fill("#f-from", today)
    page.fill("#f-to", today)  # "to" includes its day
    expect(rows).to_have_count(2)
    page.goto(f"{fabflow.url}/orders?q={tag}&from=2020-01-01&to=2020-01-31")  # opened cold
    expect(page.locator("#f-to")).to_have_value("2020-01-31")
    expect(page.locator("#empty")).to_be_visible()
    expect(rows).to_have_count(0)


def test_times_read_relative_with_the_exact_time_on_hover(page: Any, fabflow: Fabflow) -> None:
    tag = unique("rel")
    _seed(fabflow, tag, [f"f-{tag}"], 1)
    page.clock.install()  # the page's clock, moved on below
    page.set_viewport_size(DESKTOP)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    updated = page.locator("#orders tbody td.when time").last
    expect(updated).to_have_text(re.compile(r"just now|sec"))
    exact = updated.get_attribute("title") or ""
    assert re.search(r"\d{4}", exact) and re.search(r"\d{1,2}:\d{2}", exact), exact
    updated.hover()
    page.clock.fast_forward("05:00")  # five minutes on: the text follows, the title stays
    expect(updated).to_have_text(re.compile(r"5 min"))
    assert updated.get_attribute("title") == exact


def test_rows_are_compact_with_the_current_step(page: Any, fabflow: Fabflow) -> None:
    tag = unique("cmp")
    _seed(fabflow, tag, [f"f-{tag}"], 30)
    page.set_viewport_size(DESKTOP)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    rows = page.locator("#orders tbody tr[data-order-id]")
    expect(rows).to_have_count(30)
    expect(rows.first.locator(".step")).to_have_text("check")
    in_sight = page.evaluate(
        """() => [...document.querySelectorAll('#orders tbody tr')]
              .filter(r => r.getBoundingClientRect().bottom <= innerHeight).length"""
    )
    shot(page, "orders-list-desktop")
    assert in_sight >= 20, f"{in_sight} rows in sight on a 900 px screen"


def test_status_in_any_case_and_a_search_without_accents(page: Any, fabflow: Fabflow) -> None:
    tag = unique("acc")
    ids = _seed(fabflow, tag, [f"f-{tag}"], 1, customer={"name": "Zoë Ångström"})
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q=zoe%20angstrom")
    expect(page.locator(f"#orders tr[data-order-id='{ids[0]}']")).to_be_visible()
    page.goto(f"{fabflow.url}/orders?q={tag}&status=created")
    expect(page.locator("#orders tbody tr[data-order-id]")).to_have_count(1)
    page.fill("#f-status", "CREATED")
    page.press("#f-status", "Enter")
    expect(page.locator("#orders tbody tr[data-order-id]")).to_have_count(1)


def test_cancel_all_of_a_filtered_view_with_one_confirmation(page: Any, fabflow: Fabflow) -> None:
    tag = unique("blk")
    flow_id = f"f-{tag}"
    _seed(fabflow, tag, [flow_id], 3)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?state=waiting&flowId={flow_id}")
    cancel = page.locator("#bulk-cancel")
    expect(cancel).to_have_text("Cancel all 3")
    expect(page.locator("#bulk-retry")).to_be_hidden()
    cancel.click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#toast")).to_contain_text("Cancelled 3 of 3")
    expect(page.locator("#orders tbody tr[data-order-id]")).to_have_count(0)
    page.locator("#counts button[data-state=cancelled]").click()
    expect(page.locator("#bulk-retry")).to_have_text("Retry all 3")


def test_a_phone_shows_a_card_per_order_without_sideways_scroll(
    page: Any, fabflow: Fabflow
) -> None:
    tag = unique("phn")
    name = "Bartholomew Featherstonehaugh-Wolfeschlegelsteinhausenbergerdorff"
    _seed(fabflow, tag, [f"a-very-long-flow-name-{tag}"], 3, customer={"name": name})
    page.set_viewport_size(PHONE)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    rows = page.locator("#orders tbody tr[data-order-id]")
    expect(rows).to_have_count(3)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    shot(page, "orders-list-phone")
    assert overflow <= 0, f"the orders page scrolls sideways by {overflow} px on a phone"
    card = rows.first
    for cell in ("td.status", "td.state", "td.order a"):
        box = card.locator(cell).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    expect(card.locator("td.status")).to_be_visible()
    expect(card.locator("td.state .badge").first).to_have_text(re.compile("Waiting"))
    expect(page.locator("#f-sort")).to_be_visible()  # the headers are gone: the box sorts


def test_a_phone_sorts_by_the_box_and_filters_by_day(page: Any, fabflow: Fabflow) -> None:
    tag = unique("phs")
    b_flow, a_flow = f"b-{tag}", f"a-{tag}"
    _seed(fabflow, tag, [b_flow, a_flow], 2)
    page.set_viewport_size(PHONE)
    sign_in(page, fabflow, "/orders")
    page.goto(f"{fabflow.url}/orders?q={tag}")
    flows = page.locator("#orders tbody td.flow")
    expect(flows.first).to_contain_text(a_flow)  # newest first: the second order's flow
    page.select_option("#f-sort", "-flow")
    expect(flows.first).to_contain_text(b_flow)
    assert "sort=-flow" in page.url
    updated = page.locator("#orders tbody td.when time").last
    expect(updated).to_be_visible()
    assert re.search(r"\d{1,2}:\d{2}", updated.get_attribute("title") or "")
    page.fill("#f-from", "2020-01-01")
    page.fill("#f-to", "2020-01-02")
    expect(page.locator("#empty")).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"the orders page scrolls sideways by {overflow} px on a phone"
