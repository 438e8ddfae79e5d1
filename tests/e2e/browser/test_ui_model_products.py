"""The products page in a real Chromium against a real ``fabflow serve``: a shop drops its
OpenSCAD model, sees it checked and listed with a form from its Customizer annotations
(dropdown labels, tabs), previews a personalisation, adds a new version after a conflict, and
sees a hostile model refused with the file and line."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TAG = b"""// A key tag with a hole.
/* [Size] */
// How wide the tag is
width = 40; // [20:5:80]
/* [Look] */
shape = "round"; // [round:Rounded corners, square:Square corners]
/* [Hidden] */
$fn = 32;
difference() {
    if (shape == "round")
        hull() for (x = [5, width - 5]) translate([x, 5, 0]) cylinder(r = 5, h = 3);
    else cube([width, 10, 3]);
    translate([5, 5, -1]) cylinder(d = 4, h = 10);
}
"""


def _choose(page: Any, name: str, body: bytes) -> None:
    page.set_input_files(
        '#upload input[name="files"]',
        files=[{"name": name, "mimeType": "text/plain", "buffer": body}],
    )


def test_drop_a_model_preview_it_and_add_a_version(page: Any, fabflow: Fabflow) -> None:
    name = unique("tag")
    sign_in(page, fabflow, "/products")
    _choose(page, "key_tag.scad", TAG)
    expect(page.locator("#upload-files")).to_have_text("key_tag.scad")
    page.fill("#upload-name", name)
    page.click('#upload button[type="submit"]')
    expect(page.locator("#upload-result")).to_contain_text(
        f"{name} version 1 added", timeout=30_000
    )

    card = page.locator(f"#product-{name}")
    expect(card).to_contain_text("OpenSCAD model, version 1")
    expect(card.locator("legend")).to_have_text(["Size", "Look"])  # the model's tabs
    shape = card.locator('select[name="shape"]')
    expect(shape.locator("option")).to_have_text(["Rounded corners", "Square corners"])
    shape.select_option(label="Square corners")
    card.locator('input[name="width"]').fill("60")
    card.get_by_role("button", name="Preview").click()
    figure = card.locator("figure.part")
    expect(figure.locator("img")).to_be_visible(timeout=30_000)
    expect(figure.locator('[data-stat="size"]')).to_have_text("60 × 10 × 3 mm")
    shot(page, "model-product-preview")

    card.locator('input[name="width"]').fill("95")
    card.get_by_role("button", name="Preview").click()
    expect(card.locator("#p-" + name + "-width-error")).to_contain_text("80")

    _choose(page, "key_tag.scad", TAG.replace(b"h = 3", b"h = 4"))
    page.click('#upload button[type="submit"]')
    again = page.get_by_role("button", name=f"Add as a new version of {name}")
    expect(again).to_be_visible(timeout=30_000)
    again.click()
    expect(page.locator("#upload-result")).to_contain_text(
        f"{name} version 2 added", timeout=30_000
    )
    expect(page.locator(f"#product-{name}")).to_contain_text("OpenSCAD model, version 2")


def test_a_model_reading_outside_its_folder_is_refused_with_its_line(
    page: Any, fabflow: Fabflow
) -> None:
    sign_in(page, fabflow, "/products")
    _choose(page, "evil.scad", b'cube(1);\nimport("/etc/passwd");\n')
    page.fill("#upload-name", unique("evil"))
    page.click('#upload button[type="submit"]')
    alert = page.locator("#upload-result .alert")
    expect(alert).to_contain_text("evil.scad:2", timeout=30_000)
    shot(page, "model-product-refused")
