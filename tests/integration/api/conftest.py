"""Fixtures for API tests: the real app on a real store (SQLite and PostgreSQL), keys of two
tenants, an HTTP receiver on 127.0.0.1 that fails when told to, and a worker to run orders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

from fabflow.api import create_app
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.registry import executors as registered
from fabflow.store.repository import Store

ENDED = ("succeeded", "failed", "cancelled")


@dataclass
class Receiver:
    """What the REST step talks to: answers ``fail`` times with 500, then 200."""

    url: str = ""
    fail: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if self.fail > 0:
            self.fail -= 1
            return web.json_response({"error": "down for maintenance"}, status=500)
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/orders", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/orders"
    yield rec
    await runner.cleanup()


@pytest.fixture
def api_settings(db_settings: Settings) -> Settings:
    # The receiver listens on loopback, which the REST step refuses unless allowed.
    return db_settings.with_(outbound_allow=("127.0.0.1",), retry_initial_delay_ms=50)


@pytest.fixture
def api_store(api_settings: Settings) -> Iterator[Store]:
    store = Store.open(api_settings)
    yield store
    store.close()


@pytest.fixture
def app(api_settings: Settings, api_store: Store) -> FastAPI:
    return create_app(api_settings, api_store)


@pytest.fixture
def keys(api_store: Store) -> dict[str, str]:
    """A key of tenant "acme" and one of tenant "globex"."""
    return {name: api_store.create_api_key(name)[1] for name in ("acme", "globex")}


def client_for(app: FastAPI, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://fabflow", headers=headers)


@pytest.fixture
async def acme(app: FastAPI, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, keys["acme"]) as client:
        yield client


@pytest.fixture
async def globex(app: FastAPI, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, keys["globex"]) as client:
        yield client


async def run_until_ended(
    store: Store, client: httpx.AsyncClient, order_id: str, only: list[str] | None = None
) -> dict[str, Any]:
    """Run a worker until the order's execution ends; the order as the API shows it."""
    classes = registered()
    wanted = {name: classes[name] for name in only} if only else None
    state: dict[str, Any] = {}

    async def ended() -> bool:
        state["order"] = (await client.get(f"/api/orders/{order_id}")).json()
        return bool(state["order"]["execution"]["state"] in ENDED)

    async with started_executors(store.settings, wanted) as executors:
        worker = Worker(store, executors, concurrency=4)
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(60):
                while not await ended():
                    await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await task
    return dict(state["order"])


@asynccontextmanager
async def worker_running(store: Store) -> AsyncIterator[Worker]:
    """A worker with every registered step type, running while the block runs."""
    async with started_executors(store.settings) as executors:
        worker = Worker(store, executors, concurrency=4)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task


async def order_when(
    client: httpx.AsyncClient, order_id: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The order once ``ready`` says so (10 s at most)."""
    async with asyncio.timeout(10):
        while True:
            order: dict[str, Any] = (await client.get(f"/api/orders/{order_id}")).json()
            if ready(order):
                return order
            await asyncio.sleep(0.02)


async def state_of(client: httpx.AsyncClient, order_id: str, *states: str) -> dict[str, Any]:
    """The order once its execution is in one of ``states`` (10 s at most)."""
    return await order_when(client, order_id, lambda o: o["execution"]["state"] in states)


def rest_flow(url: str, **step: Any) -> dict[str, Any]:
    """A flow with one REST step that posts to ``url``, then ends."""
    notify = {
        "stepDefinitionId": "notify",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": url},
        **step,
    }
    return {"id": "shop", "name": "Shop", "steps": [notify]}
