"""The 3D view in a real Chromium against a real ``fabflow serve``: a previewed part opens in
three.js (loaded from the server only then), is drawn, measures the real STL's bounding box,
turns under a mouse drag and the arrow keys, and closes, with no console error or CSP refusal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .conftest import ARGS, shot
from .support import Fabflow
from .test_ui import expect, make_flow, new_order, sign_in, unique, wait_ended

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

STL_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
# Chromium draws WebGL in software (SwiftShader) where there is no GPU, as in CI, only when told.
WEBGL_ARGS = [*ARGS, "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
RECORD_CSP = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=WEBGL_ARGS)
        yield launched
        launched.close()


def stl_size(body: bytes) -> list[float]:
    count = int.from_bytes(body[80:84], "little")
    corners = np.frombuffer(body, STL_TRIANGLE, count, 84)["corners"].reshape(-1, 3)
    return [float(v) for v in corners.max(axis=0) - corners.min(axis=0)]


def pixels(locator: Any) -> np.ndarray:
    """The element as the screen shows it, RGB, without its edge (where the focus ring is)."""
    image = Image.open(io.BytesIO(locator.screenshot())).convert("RGB")
    return np.asarray(image, dtype=np.int16)[8:-8, 8:-8]


def changed(a: np.ndarray, b: np.ndarray) -> float:
    """The share of pixels that differ clearly between two pictures of the same size."""
    return float((np.abs(a - b).max(axis=2) > 24).mean())


def test_a_previewed_part_turns_in_3d_and_measures_its_real_size(
    page: Any, fabflow: Fabflow
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.add_init_script(RECORD_CSP)
    loaded: list[str] = []
    page.on("request", lambda r: loaded.append(r.url))
    sign_in(page, fabflow, "/products")
    card = page.locator("#product-nameplate")
    card.locator('input[name="text"]').fill("Turn")
    card.locator('input[name="width"]').fill("90")
    card.get_by_role("button", name="Preview").click()
    figure = card.locator("figure.part")
    expect(figure.locator("img")).to_be_visible(timeout=30_000)
    assert not [u for u in loaded if "/vendor/" in u or "viewer.js" in u]  # nothing until opened

    with page.expect_response("**/preview/nameplate.stl") as answer:
        figure.get_by_role("button", name="View in 3D").click()
    stl = answer.value.body()
    canvas = figure.locator("canvas.viewer-canvas")
    expect(canvas).to_be_visible()
    expected = " × ".join(f"{round(v, 1):g}" for v in stl_size(stl)) + " mm"
    expect(figure.locator('[data-stat="bbox"]')).to_have_text(expected)
    expect(figure.locator('[data-stat="size"]')).to_have_text(expected)  # the server's measure
    assert expected.startswith("90 × ")
    page.wait_for_timeout(300)  # the first frame is on screen
    first = pixels(canvas)
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 50, "the canvas is blank"
    background = np.array([0xF6, 0xF8, 0xFA])
    assert (np.abs(first - background).max(axis=2) > 24).mean() > 0.05, "no part drawn"
    shot(page, "viewer-open")

    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 30, steps=8)
    page.mouse.up()
    dragged = pixels(canvas)
    assert changed(first, dragged) > 0.02, "a drag did not turn the part"

    canvas.focus()
    page.keyboard.press("0")  # back to the first view
    page.wait_for_timeout(100)
    assert changed(first, pixels(canvas)) < 0.01
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("-")
    page.wait_for_timeout(100)
    assert changed(first, pixels(canvas)) > 0.02, "the keys did not turn the part"
    shot(page, "viewer-turned")

    vendor = [u for u in loaded if "/static/vendor/three/" in u]
    assert vendor and all(u.startswith(fabflow.url) for u in vendor)  # this server, no CDN
    page.evaluate("window.gl = document.querySelector('canvas.viewer-canvas').getContext('webgl2')")
    figure.get_by_role("button", name="Close 3D view").click()
    expect(canvas).to_have_count(0)
    assert page.evaluate("window.gl.isContextLost()"), "closing kept the WebGL context"
    expect(figure.get_by_role("button", name="View in 3D")).to_have_attribute(
        "aria-expanded", "false"
    )
    assert page.evaluate("window.cspViolations") == []
    assert errors == []


MOUNT = """async ([url, format, name]) => {
  const { mountViewer } = await import("/static/viewer.js");
  const box = document.createElement("div");
  box.id = "mounted";
  document.querySelector("main").append(box);
  window.view = mountViewer(box, url, { format, name });
  return window.view.ready;
}"""


@pytest.mark.parametrize("file_format", ["obj", "3mf", "stl-ascii"])
def test_an_orders_file_opens_with_the_sessions_cookie(
    page: Any, fabflow: Fabflow, file_format: str
) -> None:
    """What the order page mounts: a production file's URL, read with the page's session."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    flow_id = unique(file_format)
    generate = {
        "stepDefinitionId": "generate",
        "type": "generate-production-files",
        "successStatus": "Files ready",
    }
    flow = {
        "id": flow_id,
        "name": f"{file_format} files",
        "steps": [{**generate, "options": {"fileFormat": file_format}}],
    }
    make_flow(fabflow, flow)
    order = wait_ended(fabflow, new_order(fabflow, flow_id, unique("FILE"))["id"])
    record = order["files"][0]
    assert record["format"] == file_format, record
    keyed = f"/api/orders/{order['id']}/files/{record['name']}"  # needs the key or the session

    sign_in(page, fabflow, "/products")
    drawn = page.evaluate(MOUNT, [keyed, record["format"], record["name"]])
    size = [hi - lo for lo, hi in zip(record["bbox"]["min"], record["bbox"]["max"], strict=True)]
    assert drawn["sizeMm"] == pytest.approx(size, abs=1e-3)
    mounted = page.locator("#mounted")
    expected = " × ".join(f"{round(v, 1):g}" for v in size) + " mm"
    expect(mounted.locator('[data-stat="bbox"]')).to_have_text(expected)
    page.wait_for_timeout(300)
    picture = pixels(mounted.locator("canvas"))
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50, "the canvas is blank"
    shot(page, f"viewer-{file_format}")
    page.evaluate("window.gl = document.querySelector('#mounted canvas').getContext('webgl2')")
    page.evaluate("document.querySelector('#mounted').remove()")  # a live refresh redraws
    page.wait_for_function("() => window.gl.isContextLost()")  # the view let its context go
    assert errors == []


def test_missing_three_js_files_say_so_in_the_view(page: Any, fabflow: Fabflow) -> None:
    page.route("**/static/vendor/three/**", lambda route: route.fulfill(status=404))
    sign_in(page, fabflow, "/products")
    card = page.locator("#product-nameplate")
    card.get_by_role("button", name="Preview").click()
    figure = card.locator("figure.part")
    figure.get_by_role("button", name="View in 3D").click()
    expect(figure.locator(".viewer-problem")).to_contain_text("three.js files are missing")
    expect(figure.locator("canvas")).to_have_count(0)


def test_the_view_fits_a_phone(page: Any, fabflow: Fabflow) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, fabflow, "/products")
    card = page.locator("#product-box")
    card.get_by_role("button", name="Preview").click()
    figure = card.locator("figure.part").first
    figure.get_by_role("button", name="View in 3D").click()
    canvas = figure.locator("canvas.viewer-canvas")
    expect(figure.locator('[data-stat="bbox"]')).to_have_text(
        figure.locator('[data-stat="size"]').inner_text()
    )
    box = canvas.bounding_box()
    assert box["width"] > 250 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.wait_for_timeout(300)
    assert len(np.unique(pixels(canvas).reshape(-1, 3), axis=0)) > 50, "the canvas is blank"
    shot(page, "viewer-phone")
