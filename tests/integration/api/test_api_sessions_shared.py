"""UI sessions live in the store: a browser signed in through one API node is served by
another (no sticky sessions), a restarted node keeps it, a sign-out on one node ends it on all,
and the store's table alone gives away neither a usable cookie nor the API key."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import select

from fabflow.server import create_server
from fabflow.settings import Settings
from fabflow.store.repository import Store
from fabflow.store.schema import web_sessions
from fabflow.web.sessions import CACHE_SECONDS, COOKIE
from tests.integration.api.conftest import client_for
from tests.integration.api.test_api_composition import _sign_in


def _node(settings: Settings, store: Store) -> FastAPI:
    return create_server(settings, store, workers=0)


async def test_any_node_serves_a_session_and_sign_out_ends_it_everywhere(
    api_settings: Settings, api_store: Store, keys: dict[str, str]
) -> None:
    first, second = _node(api_settings, api_store), _node(api_settings, api_store)
    async with client_for(first, None) as on_first, client_for(second, None) as on_second:
        csrf = await _sign_in(on_first, keys["acme"])
        on_second.cookies.set(COOKIE, on_first.cookies[COOKIE])
        assert (await on_second.get("/api/orders")).status_code == 200
        assert (await on_second.get("/orders")).status_code == 200  # the page, not /signin

        signed_out = await on_second.post("/signout", data={"csrf": csrf})
        assert signed_out.status_code == 303
        await asyncio.sleep(CACHE_SECONDS + 0.1)  # the first node's cache of it runs out
        assert (await on_first.get("/api/orders")).status_code == 401


async def test_a_restarted_node_keeps_the_session(
    api_settings: Settings, api_store: Store, keys: dict[str, str]
) -> None:
    async with client_for(_node(api_settings, api_store), None) as before:
        await _sign_in(before, keys["acme"])
        cookie = before.cookies[COOKIE]
    async with client_for(_node(api_settings, api_store), None) as after:
        after.cookies.set(COOKIE, cookie)
        listed = await after.get("/api/orders")
        assert listed.status_code == 200, listed.text


async def test_the_table_alone_opens_no_session(
    api_settings: Settings, api_store: Store, keys: dict[str, str]
) -> None:
    async with client_for(_node(api_settings, api_store), None) as browser:
        await _sign_in(browser, keys["acme"])
        cookie = browser.cookies[COOKIE]
    with api_store.engine.connect() as conn:
        (row,) = conn.execute(select(web_sessions)).mappings().all()
    assert keys["acme"] not in str(dict(row)) and cookie not in str(dict(row))
    async with client_for(_node(api_settings, api_store), None) as thief:
        thief.cookies.set(COOKIE, row["id"])  # the stored id is not a cookie that works
        assert (await thief.get("/api/orders")).status_code == 401
