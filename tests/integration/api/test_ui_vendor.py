"""The 3D view's three.js, as ``make vendor`` leaves it: the version package.json pins, every
file the viewer imports served as JavaScript by ``fabflow serve``, with no bare ``'three'``
import left that a browser could not resolve without an import map."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from fabflow.server import create_server
from fabflow.settings import Settings
from fabflow.store.repository import Store
from fabflow.web import STATIC_DIR
from tests.integration.api.conftest import client_for

ROOT = Path(__file__).resolve().parents[3]
VENDOR = STATIC_DIR / "vendor" / "three"
VIEWER_IMPORTS = (
    "three.module.js",
    "OrbitControls.js",
    "STLLoader.js",
    "OBJLoader.js",
    "3MFLoader.js",
)
THEIR_IMPORTS = ("three.core.js", "fflate.module.js", "BufferGeometryUtils.js")


@pytest.fixture
def served(api_settings: Settings, api_store: Store) -> FastAPI:
    return create_server(api_settings, api_store, workers=0)


def test_the_vendored_three_is_the_pinned_version() -> None:
    assert VENDOR.is_dir(), f"{VENDOR} is missing: `make vendor` installs it"
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["three"]
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "an exact version, not a range"
    assert locked["node_modules/three"]["version"] == pinned
    assert (VENDOR / "VERSION").read_text().strip() == pinned


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
async def test_every_file_the_viewer_imports_is_served_as_javascript(served: FastAPI) -> None:
    viewer = (STATIC_DIR / "viewer.js").read_text()
    async with client_for(served, None) as browser:  # static files need no session
        for name in VIEWER_IMPORTS + THEIR_IMPORTS:
            answer = await browser.get(f"/static/vendor/three/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith("text/javascript"), name
            assert not re.search(r"""from\s+['"](three['"]|\.\./)""", answer.text), name
            assert name in THEIR_IMPORTS or f'"{name}"' in viewer, name
        page = await browser.get("/static/viewer.js")
        assert page.headers["content-type"].startswith("text/javascript")
