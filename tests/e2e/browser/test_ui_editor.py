"""The flow editor keeps an operator's work: leaving with unsaved edits asks first, and saving a
new flow under a taken id says what to do in the operator's words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .support import Fabflow
from .test_ui import expect, rest_flow, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_leaving_with_unsaved_edits_asks_first(page: Any, fabflow: Fabflow) -> None:
    flow = rest_flow(unique("unsaved"), "http://127.0.0.1:9/orders")
    with fabflow.api() as api:
        assert api.post("/api/flows", json=flow).status_code == 201
    sign_in(page, fabflow, f"/flows/{flow['id']}")
    expect(page.locator("#check-status")).to_contain_text("Valid")

    page.click("text=← All flows")  # nothing edited: it just goes
    page.wait_for_url("**/flows")
    page.go_back()
    expect(page.locator("#check-status")).to_contain_text("Valid")

    edited = page.locator("#source").input_value().replace("Sent to printer", "Printed")
    page.fill("#source", edited)
    page.click("text=← All flows")
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Leave without saving?")
    dialog.locator("button[value=cancel]").click()
    assert page.url.endswith(f"/flows/{flow['id']}")
    assert "Printed" in page.locator("#source").input_value()  # the edit is still there

    page.click("text=← All flows")
    page.click("#confirm-ok")
    page.wait_for_url("**/flows")
    with fabflow.api() as api:
        assert api.get(f"/api/flows/{flow['id']}").json()["currentVersion"] == 1


def test_a_new_flow_under_a_taken_id_says_what_to_do(page: Any, fabflow: Fabflow) -> None:
    flow = rest_flow(unique("taken"), "http://127.0.0.1:9/orders")
    with fabflow.api() as api:
        assert api.post("/api/flows", json=flow).status_code == 201
    sign_in(page, fabflow, "/flows/new")
    page.fill("#flow-id", flow["id"])
    page.fill("#source", json.dumps({k: v for k, v in flow.items() if k != "id"}, indent=2))
    expect(page.locator("#check-status")).to_contain_text("Valid")
    page.click("#save")
    toast = page.locator("#toast")
    expect(toast).to_contain_text(f"a flow “{flow['id']}” exists already")
    expect(toast).not_to_contain_text("PUT /api")
