"""A flow that branches on the order, in a real Chromium against a real ``fabflow serve``: the
order page says which branch a choice took and shows what the REST receiver answered (the
step's "Output"), and the flow editor's diagram labels each branch with its ``when``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, make_flow, sign_in, unique, wait_ended

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

BE = 'order.data.country == "BE"'
US = 'order.data.country == "US"'


@dataclass
class JobReceiver:
    """A workshop's MES on 127.0.0.1: takes an order and answers ``{"jobId": job_id}``."""

    job_id: str
    hits: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/jobs"

    def start(self) -> JobReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hits.append(self.path)
                payload = json.dumps({"jobId": receiver.job_id}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass  # keep test output quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def workshops() -> Iterator[tuple[JobReceiver, JobReceiver]]:
    eu, us = JobReceiver("J-1").start(), JobReceiver("US-7").start()
    yield eu, us
    eu.stop()
    us.stop()


def routing_flow(flow_id: str, eu: str, us: str) -> dict[str, Any]:
    """BE orders go to the EU workshop, US ones to the US workshop, others to the shop."""

    def rest(sid: str, uri: str) -> dict[str, Any]:
        status = f"At the {sid[:2].upper()} workshop"
        step = {"stepDefinitionId": sid, "type": "consume-rest-api", "successStatus": status}
        return {**step, "options": {"uri": uri}, "retry": 1}

    return {
        "id": flow_id,
        "name": f"Routed {flow_id}",
        "steps": [
            {
                "stepDefinitionId": "route",
                "type": "choice",
                "options": {
                    "rules": [{"when": BE, "next": "eu-mes"}, {"when": US, "next": "us-mes"}],
                    "otherwise": "ask-shop",
                },
            },
            rest("eu-mes", eu),
            rest("us-mes", us),
            {
                "stepDefinitionId": "ask-shop",
                "type": "send-email",
                "successStatus": "Asked the shop",
                "options": {
                    "recipients": ["shop@example.com"],
                    "subject": "Where does order {{ order.id }} go?",
                    "message": "No workshop serves {{ order.data.country }}.",
                },
            },
        ],
    }


def order_from(fabflow: Fabflow, flow_id: str, country: str) -> dict[str, Any]:
    order = {
        "externalId": unique(country),
        "flowId": flow_id,
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "data": {"country": country},
        "lines": [
            {"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": "Ada"}}
        ],
    }
    with fabflow.api() as api:
        response = api.post("/api/orders", json=order)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def test_the_order_page_shows_the_branch_taken_and_the_receivers_job_id(
    page: Any, fabflow: Fabflow, workshops: tuple[JobReceiver, JobReceiver]
) -> None:
    eu, us = workshops
    flow_id = unique("routed")
    make_flow(fabflow, routing_flow(flow_id, eu.url, us.url))
    order = wait_ended(fabflow, order_from(fabflow, flow_id, "BE")["id"])
    assert order["execution"]["state"] == "succeeded"
    assert (eu.hits, us.hits) == (["/jobs"], [])

    sign_in(page, fabflow, f"/orders/{order['id']}")
    expect(page.locator("#state")).to_contain_text("Succeeded")
    expect(page.locator('[data-fact="Status"]')).to_have_text("At the EU workshop")
    choice = page.locator('#attempts li[data-step="route"]')
    expect(choice).to_contain_text("choice")
    expect(choice).to_contain_text(f"Routed (rule 1: {BE}) → eu-mes")
    expect(choice.get_by_text("Output", exact=True)).to_have_count(0)  # a choice has none
    expect(page.locator('#attempts li[data-step="us-mes"]')).to_have_count(0)

    sent = page.locator('#attempts li[data-step="eu-mes"]')
    answer = sent.locator("details", has=page.get_by_text("Output", exact=True)).locator("pre")
    expect(answer).to_be_hidden()  # collapsed until the operator opens it
    sent.get_by_text("Output", exact=True).click()
    expect(answer).to_be_visible()
    expect(answer).to_contain_text('"jobId": "J-1"')
    expect(answer).to_contain_text('"status": 200')
    shot(page, "order-choice-output")


def test_otherwise_is_shown_when_no_rule_matched(
    page: Any, fabflow: Fabflow, workshops: tuple[JobReceiver, JobReceiver]
) -> None:
    eu, us = workshops
    flow_id = unique("otherwise")
    make_flow(fabflow, routing_flow(flow_id, eu.url, us.url))
    order = wait_ended(fabflow, order_from(fabflow, flow_id, "JP")["id"])
    assert order["execution"]["state"] == "succeeded"
    assert (eu.hits, us.hits) == ([], [])

    sign_in(page, fabflow, f"/orders/{order['id']}")
    choice = page.locator('#attempts li[data-step="route"]')
    expect(choice).to_contain_text("Routed (no rule matched: otherwise) → ask-shop")
    expect(page.locator('[data-fact="Status"]')).to_have_text("Asked the shop")


def test_the_diagram_labels_each_branch_with_its_when(
    page: Any, fabflow: Fabflow, workshops: tuple[JobReceiver, JobReceiver]
) -> None:
    eu, us = workshops
    flow_id = unique("drawn")
    make_flow(fabflow, routing_flow(flow_id, eu.url, us.url))
    sign_in(page, fabflow, f"/flows/{flow_id}")
    expect(page.locator("#check-status")).to_contain_text("Valid")

    # What a screen reader reads: every branch, with its condition, and where it goes.
    described = page.get_by_role("img", name="Diagram of the flow")
    expect(described).to_have_attribute("aria-label", _contains(f"route when {BE} goes to eu-mes"))
    expect(described).to_have_attribute("aria-label", _contains(f"route when {US} goes to us-mes"))
    expect(described).to_have_attribute("aria-label", _contains("route otherwise goes to ask-shop"))

    # What the eye reads: three labelled arrows out of the choice, none hiding another.
    drawing = page.locator("#diagram svg")
    labels = [f"when {BE}", f"when {US}", "otherwise"]
    boxes = []
    for text in labels:
        label = drawing.locator("text").filter(has_text=text).last
        expect(label).to_be_visible()
        box = label.bounding_box()
        assert box is not None
        boxes.append((text, box))
    for i, (one, a) in enumerate(boxes):
        for other, b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, f"the labels {one!r} and {other!r} overlap: {a} {b}"
    shot(page, "flow-editor-choice")


def _contains(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


def test_an_opened_output_stays_open_while_the_order_moves_on(
    page: Any, fabflow: Fabflow, workshops: tuple[JobReceiver, JobReceiver]
) -> None:
    """A person checks the job id the MES answered with; the page rebuilds on every change."""
    eu, us = workshops
    flow = routing_flow(unique("checked"), eu.url, us.url)
    flow["steps"][1]["onSuccess"] = "check"
    flow["steps"].append(
        {
            "stepDefinitionId": "check",
            "type": "manual-confirmation",
            "successStatus": "Checked",
            "options": {"prompt": "Is job {{ steps['eu-mes'].response.body.jobId }} planned?"},
        }
    )
    make_flow(fabflow, flow)
    order = order_from(fabflow, flow["id"], "BE")
    sign_in(page, fabflow, f"/orders/{order['id']}")
    expect(page.locator("#confirmation-prompt")).to_have_text("Is job J-1 planned?", timeout=30_000)

    sent = page.locator('#attempts li[data-step="eu-mes"]')
    sent.get_by_text("Output", exact=True).click()
    answer = sent.locator("details", has=page.get_by_text("Output", exact=True)).locator("pre")
    expect(answer).to_contain_text('"jobId": "J-1"')
    page.click("#confirm-order")
    page.click("#confirm-ok")
    expect(page.locator("#state")).to_contain_text("Succeeded", timeout=30_000)
    expect(page.locator('[data-fact="Status"]')).to_have_text("Checked")
    expect(answer).to_be_visible()  # still open after the live refreshes
    sent.get_by_text("Output", exact=True).click()
    expect(answer).to_be_hidden()
