"""The API alone and the app ``fabflow serve`` composes: the UI exists only in the composed app,
a browser signed in there calls the API with its session, and the composed app's workers run
orders while it serves. The layers' imports point one way."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from fabflow.server import create_server
from fabflow.settings import Settings
from fabflow.store.repository import Store
from tests.integration.api.conftest import ENDED, Receiver, client_for, rest_flow

UI_PATHS = ("/", "/signin", "/orders", "/flows", "/products", "/static/app.js")


@pytest.fixture
def served(api_settings: Settings, api_store: Store) -> FastAPI:
    """The app of ``fabflow serve --workers 0``."""
    return create_server(api_settings, api_store, workers=0)


@pytest.fixture
async def browser(served: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies and sends no key, as a browser does."""
    async with client_for(served, None) as client:
        yield client


async def test_the_api_alone_serves_no_ui(app: FastAPI) -> None:
    async with client_for(app, None) as anonymous:
        for path in UI_PATHS:
            answer = await anonymous.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["code"] == "not_found", path
        assert (await anonymous.get("/api/health")).status_code == 200


async def test_the_composed_app_serves_the_ui_beside_the_api(
    browser: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    assert (await browser.get("/")).headers["location"] == "/orders"
    assert (await browser.get("/orders")).headers["location"] == "/signin?next=%2Forders"
    signin = await browser.get("/signin")
    assert signin.status_code == 200 and 'name="token"' in signin.text
    assert (await browser.get("/static/app.js")).status_code == 200
    keyed = {"Authorization": f"Bearer {keys['acme']}"}
    assert (await browser.get("/api/orders", headers=keyed)).status_code == 200


async def _sign_in(browser: httpx.AsyncClient, key: str) -> str:
    """Sign in through the form as a person would; the session's CSRF token."""
    form = (await browser.get("/signin")).text
    token = re.search(r'name="token" value="([^"]+)"', form)
    assert token is not None
    signed_in = await browser.post("/signin", data={"key": key, "token": token.group(1)})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/orders"
    page = (await browser.get("/orders")).text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert csrf is not None
    return csrf.group(1)


async def test_a_ui_session_authenticates_api_calls(
    browser: httpx.AsyncClient, acme: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow("https://example.com"))).status_code == 201
    order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
    assert (await browser.get("/api/orders")).status_code == 401

    csrf = await _sign_in(browser, keys["acme"])
    listed = (await browser.get("/api/orders")).json()["orders"]
    assert [o["id"] for o in listed] == [order_id]
    cancel = f"/api/orders/{order_id}/cancel"
    assert (await browser.post(cancel)).status_code == 403  # no CSRF token
    assert (await browser.post(cancel, headers={"X-CSRF-Token": "forged"})).status_code == 403
    # A Bearer key is checked alone: the session's CSRF rule does not apply to it.
    other = await browser.get("/api/orders", headers={"Authorization": f"Bearer {keys['globex']}"})
    assert other.status_code == 200 and other.json()["orders"] == []
    cancelled = await browser.post(cancel, headers={"X-CSRF-Token": csrf})
    assert cancelled.status_code == 200
    assert cancelled.json()["execution"]["state"] == "cancelled"


async def test_a_revoked_keys_session_gets_the_sign_in_page(
    browser: httpx.AsyncClient, api_store: Store
) -> None:
    key_id, key = api_store.create_api_key("acme", "to revoke")
    await _sign_in(browser, key)
    page = await browser.get("/products")
    assert page.status_code == 200
    assert "Tenant <strong>acme</strong>" in page.text  # its name, not its id
    api_store.revoke_api_key(key_id)
    await asyncio.sleep(1.1)  # a server remembers a valid key for one second
    page = await browser.get("/products")
    assert page.status_code == 303 and page.headers["location"].startswith("/signin"), page.text
    assert (await browser.get("/api/orders")).status_code == 401
    # the session is gone, not just refused once
    assert (await browser.get("/orders")).headers["location"] == "/signin?next=%2Forders"


async def test_pages_that_do_not_exist_are_html_404s(
    browser: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    await _sign_in(browser, keys["acme"])
    for path in ("/nope", "/flows/nope", "/orders/ord_nope"):
        page = await browser.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "Not found" in page.text and "All orders" in page.text, path
    api = await browser.get("/api/nope")
    assert api.status_code == 404 and api.json()["code"] == "not_found"


async def test_the_composed_apps_workers_run_orders_while_it_serves(
    api_settings: Settings, api_store: Store, keys: dict[str, str], receiver: Receiver
) -> None:
    served = create_server(api_settings, api_store, workers=1)
    async with served.router.lifespan_context(served), client_for(served, keys["acme"]) as acme:
        assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
        order_id = (await acme.post("/api/orders", json={"flowId": "shop"})).json()["id"]
        async with asyncio.timeout(30):
            while (order := (await acme.get(f"/api/orders/{order_id}")).json())["execution"][
                "state"
            ] not in ENDED:
                await asyncio.sleep(0.02)
    assert order["execution"]["state"] == "succeeded" and order["status"] == "Sent"
    assert [sent["id"] for sent in receiver.received] == [order_id]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("fabflow.api", ("fabflow.web", "fabflow.engine", "fabflow.cli", "fabflow.server")),
        ("fabflow.web", ("fabflow.engine", "fabflow.cli", "fabflow.server")),
    ],
)
def test_the_api_and_the_ui_import_no_layer_above_them(
    module: str, forbidden: tuple[str, ...]
) -> None:
    # A fresh interpreter: this one has imported every layer already.
    under = tuple(f"{name}." for name in forbidden)
    script = (
        f"import sys, {module}\n"
        f"print(sorted(m for m in sys.modules if m in {forbidden!r} or m.startswith({under!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
