"""A failed step's error type on the order page reads in an operator's words; the word the
API and onError's templates use stays on the element, for whoever needs it."""

from __future__ import annotations

from typing import Any

from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, new_order, rest_flow, sign_in, unique, wait_ended


def test_an_http_failure_reads_http_error_not_its_type(
    page: Any, fabflow: Fabflow, receiver: Receiver
) -> None:
    flow_id = unique("words")
    make_flow(fabflow, rest_flow(flow_id, receiver.url))
    receiver.status = 500
    order = new_order(fabflow, flow_id, unique("WORDS"))
    done = wait_ended(fabflow, order["id"])
    errors = [a["error"]["type"] for a in done["execution"]["attempts"] if a.get("error")]
    assert errors and set(errors) == {"http_status"}

    sign_in(page, fabflow, f"/orders/{order['id']}")
    failure = page.locator("#failure")
    expect(failure).to_contain_text("HTTP error: ")
    expect(failure).to_contain_text("HTTP 500")
    expect(failure).not_to_contain_text("http_status")
    kind = failure.locator(".error-type")
    expect(kind).to_have_attribute("data-error-type", "http_status")
    expect(kind).to_have_attribute("title", "Error type: http_status")
    reason = page.locator('#attempts li[data-step="post"][data-outcome="error"] .reason').first
    expect(reason).to_contain_text("HTTP error: ")
    expect(reason).not_to_contain_text("http_status")
    expect(reason.locator(".error-type")).to_have_attribute("data-error-type", "http_status")
