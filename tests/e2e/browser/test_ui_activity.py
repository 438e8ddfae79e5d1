"""The Activity page: the tenant's audit trail said in words, with who did each thing, linked
to what it is about; on a phone too."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, rest_flow, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_the_activity_page_says_who_did_what(page: Any, fabflow: Fabflow) -> None:
    flow = rest_flow(unique("audited"), "http://127.0.0.1:9/orders")
    with fabflow.api() as api:
        assert api.post("/api/flows", json=flow).status_code == 201
        assert api.post(f"/api/flows/{flow['id']}/archive").status_code == 200
        assert api.put("/api/secrets/ERP_TOKEN", json={"value": "t0ken"}).status_code in (200, 201)
    sign_in(page, fabflow, "/activity")
    rows = page.locator("#activity tbody tr")
    saved = rows.filter(has_text=f"Saved flow {flow['id']} as version 1")
    expect(saved).to_have_count(1)
    expect(saved.locator("td").nth(2)).to_contain_text("key key_")
    expect(rows.filter(has_text=f"Archived flow {flow['id']}")).to_have_count(1)
    expect(rows.filter(has_text="Set secret ERP_TOKEN").first).to_be_visible()
    expect(page.locator("#activity")).not_to_contain_text("t0ken")
    created = rows.filter(has_text="Created API key")
    expect(created.first.locator("td").nth(2)).to_have_text("cli")  # `fabflow apikey create`
    shot(page, "activity")

    saved.locator("a").click()
    page.wait_for_url(f"**/flows/{flow['id']}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(fabflow.url + "/activity")
    expect(rows.first).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
