"""The flow diagram in the editor: every edge stays visible (none is drawn under a box, a
step no path reaches included), and the editor fits a phone's width."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, rest_flow, sign_in, unique

PHONE = {"width": 390, "height": 844}

# Each point along each edge's path (every 2 px) that lies inside a box, its own boxes
# included: an edge starts and ends on a box's border, never inside it.
EDGES_UNDER_BOXES = """(selector) => {
  const drawing = document.querySelector(selector);
  const boxes = [...drawing.querySelectorAll("g.node[data-step]")].map((g) => {
    const r = g.querySelector("rect").getBBox();
    const at = g.transform.baseVal.consolidate().matrix;
    return { id: g.dataset.step, x: at.e + r.x, y: at.f + r.y, w: r.width, h: r.height };
  });
  const hidden = [];
  const edges = [...drawing.querySelectorAll("g.edge")];
  for (const edge of edges) {
    const path = edge.querySelector("path");
    const length = path.getTotalLength();
    for (let along = 0; along <= length; along += 2) {
      const p = path.getPointAtLength(along);
      for (const b of boxes) {
        const inside = p.x > b.x + 1 && p.x < b.x + b.w - 1 && p.y > b.y + 1 && p.y < b.y + b.h - 1;
        if (inside) hidden.push(`${edge.dataset.from}->${edge.dataset.to} under ${b.id}`);
      }
    }
  }
  return { edges: edges.length, boxes: boxes.length, hidden: [...new Set(hidden)] };
}"""


def step(name: str, on_success: str | None = None, on_error: str | None = None) -> dict[str, Any]:
    """A step that sends an email, wired to the named next steps."""
    body: dict[str, Any] = {
        "stepDefinitionId": name,
        "type": "send-email",
        "successStatus": name.capitalize(),
        "options": {"recipients": ["shop@example.com"], "subject": name, "message": "m"},
    }
    if on_success:
        body["onSuccess"] = on_success
    if on_error:
        body["onError"] = on_error
    return body


FLOWS = {
    # A's error edge to C skips the layer where an unreachable B (from an unreachable Z) sits.
    "error-edge-past-an-unreachable-step": [
        step("a", "m", "c"),
        step("m", "c"),
        step("c"),
        step("z", "b"),
        step("b", "c"),
    ],
    # Unreachable steps listed first and between, long edges on both sides.
    "long-edges-both-sides": [
        step("start", "one", "fail"),
        step("lost1", "lost2", "fail"),
        step("one", "two", "fail"),
        step("lost2", "lost3"),
        step("two", "three", "fail"),
        step("lost3", "fail"),
        step("three", "done", "fail"),
        step("done"),
        step("fail"),
        step("skip", "done"),
    ],
    # A wide row of unreachable steps under a long error edge and a long success edge.
    "wide-row-of-unreachable-steps": [
        step("a", "b", "e"),
        step("b", "c", "e"),
        step("c", "e"),
        step("e"),
        step("x1", "y1"),
        step("x2", "y2"),
        step("x3", "y3"),
        step("y1", "e"),
        step("y2", "e"),
        step("y3", "c"),
    ],
}


@pytest.mark.parametrize("shape", sorted(FLOWS))
def test_no_edge_is_drawn_under_a_box(page: Any, fabflow: Fabflow, shape: str) -> None:
    sign_in(page, fabflow, "/flows/new")
    page.fill("#source", json.dumps({"name": shape, "steps": FLOWS[shape]}, indent=2))
    expect(page.locator("#check-status")).to_contain_text("Valid")
    edges = sum(bool(s.get("onSuccess")) + bool(s.get("onError")) for s in FLOWS[shape])
    expect(page.locator("#diagram svg g.edge")).to_have_count(edges)
    expect(page.locator('#diagram g.node[data-unreachable="true"]').first).to_be_visible()
    seen = page.evaluate(EDGES_UNDER_BOXES, "#diagram svg")
    shot(page, f"diagram-{shape}")
    assert seen["edges"] == edges and seen["boxes"] == len(FLOWS[shape])
    assert seen["hidden"] == []


def fits_the_phone(page: Any) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
    expect(page.locator("#diagram svg g.node").first).to_be_visible()
    for part in ("#diagram", "#source", "#problems", "#save"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], part


def test_the_editor_fits_a_phone(browser: Any, fabflow: Fabflow) -> None:
    flow_id = unique("phone")
    flow = rest_flow(flow_id, "http://127.0.0.1:9/orders")
    flow["steps"] = [*FLOWS["long-edges-both-sides"]]
    with fabflow.api() as api:
        assert api.post("/api/flows", json=flow).status_code == 201
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    phone = context.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(phone, fabflow, "/flows/new")
        expect(phone.locator("#check-status")).to_contain_text("Valid")
        fits_the_phone(phone)
        shot(phone, "flow-editor-new-phone")

        phone.goto(f"{fabflow.url}/flows/{flow_id}")
        expect(phone.locator("#check-status")).to_contain_text("Valid")
        expect(phone.locator("#diagram svg g.node")).to_have_count(len(flow["steps"]))
        fits_the_phone(phone)
        seen = phone.evaluate(EDGES_UNDER_BOXES, "#diagram svg")
        assert seen["hidden"] == []
        shot(phone, "flow-editor-existing-phone")
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
