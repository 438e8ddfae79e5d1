"""The Secrets page in a real Chromium against a real ``fabflow serve`` (with no
FABFLOW_SECRET_KEY: it made its key in the data folder): set a secret, see its name listed,
never its value; replace it; delete it after a confirmation."""

from __future__ import annotations

import stat
from typing import Any

import pytest

from .conftest import shot
from .support import Fabflow
from .test_ui import expect, sign_in, unique

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_set_a_secret_see_its_name_never_its_value_then_delete_it(
    page: Any, fabflow: Fabflow
) -> None:
    name = unique("MES_TOKEN").replace("-", "_").upper()
    value = "ui-secret-" + unique("v")
    sign_in(page, fabflow, "/secrets")
    expect(page.locator('nav a[aria-current="page"]')).to_have_text("Secrets")

    page.fill("#secret-name", name)
    page.fill("#secret-value", value)
    expect(page.locator("#secret-value")).to_have_attribute("type", "password")
    page.click("#secret-save")
    row = page.locator(f'#secrets tr[data-name="{name}"]')
    expect(row).to_contain_text(f"{{{{ secrets.{name} }}}}")
    expect(page.locator("#secret-value")).to_have_value("")  # the value left the page
    assert value not in page.content()
    shot(page, "secrets-listed")

    with fabflow.api() as api:
        listed = api.get("/api/secrets")
    assert name in listed.text and value not in listed.text
    key_file = fabflow.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    row.get_by_role("button", name=f"Replace {name}").click()
    expect(page.locator("#secret-name")).to_have_value(name)
    expect(page.locator("#secret-value")).to_be_focused()
    page.fill("#secret-value", value + "-2")
    page.click("#secret-save")
    expect(page.locator("#toast")).to_contain_text(f"Secret {name} saved")
    assert value not in page.content()

    row.get_by_role("button", name=f"Delete {name}").click()
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(row).to_have_count(0)
    with fabflow.api() as api:
        assert name not in api.get("/api/secrets").text


def test_a_bad_name_is_refused_in_the_page(page: Any, fabflow: Fabflow) -> None:
    sign_in(page, fabflow, "/secrets")
    page.fill("#secret-name", "1-bad")
    page.fill("#secret-value", "x")
    page.click("#secret-save")
    expect(page.locator("#secret-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#toast")).to_contain_text("Give a valid name and a value.")
