"""Fairness between tenants on a real worker (SQLite and PostgreSQL): one tenant's backlog on
a slow receiver does not keep another tenant's order waiting, and a tenant alone still uses
every slot (issue 22)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.registry import executors as registered
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.support import executors as test_steps

SLOW_S = 5.0  # how long the slow receiver takes to answer


@dataclass
class Receivers:
    """Two HTTP receivers on 127.0.0.1: ``/slow`` answers after SLOW_S, ``/fast`` at once."""

    base: str = ""
    slow_calls: int = 0
    fast_at: list[float] = field(default_factory=list)  # monotonic times of /fast requests

    async def slow(self, request: web.Request) -> web.Response:
        self.slow_calls += 1
        await asyncio.sleep(SLOW_S)
        return web.json_response({"ok": True})

    async def fast(self, request: web.Request) -> web.Response:
        self.fast_at.append(time.monotonic())
        return web.json_response({"ok": True})


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    rec = Receivers()
    app = web.Application()
    app.router.add_post("/slow", rec.slow)
    app.router.add_post("/fast", rec.fast)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.base = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


@pytest.fixture
def fair_store(db_settings: Settings) -> Iterator[Store]:
    # Loopback receivers need allowing; a stopped worker gives its slow attempts back at once.
    settings = db_settings.with_(outbound_allow=("127.0.0.1",), shutdown_grace_seconds=0.2)
    store = Store.open(settings)
    yield store
    store.close()


def rest_tenant(store: Store, name: str, url: str) -> str:
    tenant = store.ensure_tenant(name)
    notify = {
        "stepDefinitionId": "notify",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": url},
    }
    store.save_flow(tenant, "shop", [notify], "Shop")
    return tenant


def new_order(store: Store, tenant: str, flow: str = "shop") -> str:
    resource, _ = orders.create_order(store, tenant, {"lines": []}, flow)
    return str(resource["id"])


def state(store: Store, tenant: str, order_id: str) -> str:
    return str(orders.get_order(store, tenant, order_id)["execution"]["state"])


async def until(check: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[list[int]]:
    """Run ``worker`` while the block runs; yields the attempts it ran at once, sampled."""
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(len(worker.running))
            await asyncio.sleep(0.01)

    task = asyncio.create_task(worker.run())
    sampler = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        sampler.cancel()
        worker.stop()
        await task


async def test_a_second_tenant_is_served_while_the_first_fills_every_slot(
    fair_store: Store, receivers: Receivers
) -> None:
    store = fair_store
    acme = rest_tenant(store, "acme", receivers.base + "/slow")
    globex = rest_tenant(store, "globex", receivers.base + "/fast")
    rest = {"consume-rest-api": registered()["consume-rest-api"]}
    async with started_executors(store.settings, rest) as executors:
        worker = Worker(store, executors, concurrency=16)
        async with running(worker) as samples:
            for _ in range(40):
                new_order(store, acme)
            # acme's steps hold every slot before globex's order arrives.
            await until(lambda: receivers.slow_calls >= 16, 10)
            assert receivers.slow_calls == 16
            queued_at = time.monotonic()
            order = new_order(store, globex)
            await until(lambda: state(store, globex, order) == "succeeded", SLOW_S)
            done_s = time.monotonic() - queued_at
            started_s = receivers.fast_at[0] - queued_at
            # acme's first steps have not ended yet: globex was not waiting for a free slot.
            assert receivers.slow_calls == 16
            most = max(samples)
    print(f"globex's order: started after {started_s:.2f} s, done after {done_s:.2f} s")
    assert done_s < 3.0
    assert started_s < 1.0
    # globex ran on an extra slot: at most one per slot acme borrowed past its share (8).
    assert most <= 16 + 8


async def test_a_tenant_alone_uses_every_slot(store: Store) -> None:
    tenant = store.ensure_tenant("acme")
    step = {
        "stepDefinitionId": "a",
        "type": "test-script",
        "successStatus": "A",
        "options": {"sleep": 0.5},
    }
    store.save_flow(tenant, "f", [step], "F")
    ids = [new_order(store, tenant, "f") for _ in range(30)]
    with test_steps.installed():
        worker = Worker(
            store, {"test-script": test_steps.ScriptStep(store.settings)}, concurrency=8
        )
        async with running(worker) as samples:
            await until(lambda: all(state(store, tenant, i) == "succeeded" for i in ids[-3:]), 20)
    assert max(samples) == 8  # every slot, and no more: nobody else waits
    assert samples.count(8) > len(samples) // 3
