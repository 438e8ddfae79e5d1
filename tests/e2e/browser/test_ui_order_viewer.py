"""The order page's production file opens in the 3D view, read with the page's session."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .conftest import shot
from .support import Fabflow, Receiver
from .test_ui import expect, make_flow, new_order, rest_flow, sign_in, unique, wait_ended
from .test_ui_viewer import browser, pixels  # noqa: F401  (the browser with software WebGL)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_an_order_file_turns_in_3d(page: Any, fabflow: Fabflow, receiver: Receiver) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    flow_id = unique("files")
    make_flow(fabflow, rest_flow(flow_id, receiver.url))
    order = wait_ended(fabflow, new_order(fabflow, flow_id, unique("FILE"))["id"])
    record = order["files"][0]
    size = [hi - lo for lo, hi in zip(record["bbox"]["min"], record["bbox"]["max"], strict=True)]
    sign_in(page, fabflow, f"/orders/{order['id']}")
    card = page.locator(f'#files article[data-name="{record["name"]}"]')
    card.get_by_role("button", name="View in 3D").click()
    expected = " × ".join(f"{round(v, 1):g}" for v in size) + " mm"
    expect(card.locator('[data-stat="bbox"]')).to_have_text(expected)
    page.wait_for_timeout(300)
    assert len(np.unique(pixels(card.locator("canvas")).reshape(-1, 3), axis=0)) > 50
    shot(page, "order-file-3d")
    with fabflow.api() as api:  # an operator's action: the page refreshes live
        rerun = {"stepDefinitionId": "post"}
        assert api.post(f"/api/orders/{order['id']}/rerun", json=rerun).status_code == 200
    expect(page.locator("#main")).to_contain_text("Rerun from post", timeout=30_000)
    expect(card.locator("canvas")).to_have_count(1)  # the open view survived the refresh
    card.get_by_role("button", name="Close 3D view").click()
    expect(card.locator("canvas")).to_have_count(0)
    assert errors == []
