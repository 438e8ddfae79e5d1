"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against a real
``fabflow serve`` process, and a screenshot of each test under ``test-output/screenshots``.

Where /usr/bin/chromium is missing (``make browser`` installs it) the tests skip with the
reason, unless FABFLOW_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import Fabflow, Receiver

CHROMIUM = Path(os.environ.get("FABFLOW_CHROMIUM", "/usr/bin/chromium"))
REQUIRE = os.environ.get("FABFLOW_REQUIRE_BROWSER") == "1"
SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: `make browser` installs Debian's chromium"
        if REQUIRE:
            pytest.fail(f"{reason}, and FABFLOW_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def fabflow(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Fabflow]:
    """One server for the session; each test uses its own flow ids and external ids."""
    server = Fabflow(tmp_path_factory.mktemp("fabflow-ui"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and the asyncio tests of later modules cannot start theirs then.
@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) at a laptop's size; its last screen is saved."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    shot(tab, request.node.name + "-end")
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-output/screenshots and print where."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
