"""``fabflow serve`` as a real process on 127.0.0.1: keys from the CLI, an order's whole life
over HTTP (run, follow live, retry after a failure, cancel), operators' commands, and a clean
stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

FABFLOW = str(Path(sys.executable).with_name("fabflow"))
ENDED = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FABFLOW, *args], env=self.env, capture_output=True, text=True, timeout=60
        )


@dataclass
class Receiver:
    url: str = ""
    fail: int = 0
    received: list[str] = field(default_factory=list)

    async def orders(self, request: web.Request) -> web.Response:
        self.received.append((await request.json())["id"])
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500, text="down")
        return web.json_response({"ok": True})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/orders", rec.orders)
    app.router.add_post("/slow", rec.slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "FABFLOW_DATA_DIR": str(tmp_path / "data"),
        "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
        # A long idle poll: orders must start through the in-process wake-up, not polling.
        "FABFLOW_POLL_SECONDS": "10",
        "FABFLOW_SHUTDOWN_GRACE_SECONDS": "2",
    }
    proc = subprocess.Popen(
        [FABFLOW, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115
    )
    srv = Server(f"http://127.0.0.1:{port}", env, proc)
    _wait_healthy(srv)
    yield srv
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _wait_healthy(srv: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert srv.proc.poll() is None, "fabflow serve exited at start"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(srv.base + "/api/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("fabflow serve did not answer /api/health within 30 s")


def _flow(flow_id: str, uri: str) -> dict[str, Any]:
    step = {
        "stepDefinitionId": "notify",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": uri},
        "retry": {"maxAttempts": 1},
    }
    return {"id": flow_id, "name": flow_id, "steps": [step]}


async def _until_ended(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            order: dict[str, Any] = (await client.get(f"/api/orders/{order_id}")).json()
            if order["execution"]["state"] in ENDED:
                return order
            await asyncio.sleep(0.02)


async def _follow(client: httpx.AsyncClient, seen: list[dict[str, Any]]) -> None:
    async with client.stream("GET", "/api/orders/stream") as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "order":
                seen.append(json.loads(line[6:]))


@pytest.mark.slow
async def test_an_order_through_a_real_server(server: Server, receiver: Receiver) -> None:
    created = server.cli("apikey", "create", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=10) as client:
        assert (
            await client.post("/api/flows", json=_flow("shop", receiver.url + "/orders"))
        ).status_code == 201
        seen: list[dict[str, Any]] = []
        follower = asyncio.create_task(_follow(client, seen))
        await asyncio.sleep(0.3)

        receiver.fail = 1
        sent = time.monotonic()
        order = (await client.post("/api/orders", json={"flowId": "shop"})).json()
        failed = await _until_ended(client, order["id"])
        assert time.monotonic() - sent < 3, "the worker was not woken by the new order"
        assert failed["execution"]["state"] == "failed"

        assert (await client.post(f"/api/orders/{order['id']}/retry")).status_code == 200
        done = await _until_ended(client, order["id"])
        assert done["execution"]["state"] == "succeeded" and done["status"] == "Sent"
        assert receiver.received == [order["id"], order["id"]]

        await asyncio.sleep(1.2)  # the stream polls every 0.5 s
        follower.cancel()
        kinds = [e["kind"] for e in seen if e["orderId"] == order["id"]]
        assert kinds[0] == "order_created" and "retried" in kinds

        await _cancel_a_running_order(client, receiver)

    listed = server.cli("orders", "list", "--tenant", "acme", "--json")
    assert listed.returncode == 0, listed.stderr
    assert order["id"] in [o["id"] for o in json.loads(listed.stdout)["orders"]]
    workers = json.loads(server.cli("workers", "--json").stdout)
    assert any(w["state"] == "running" for w in workers)

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0


async def _cancel_a_running_order(client: httpx.AsyncClient, receiver: Receiver) -> None:
    assert (
        await client.post("/api/flows", json=_flow("slow", receiver.url + "/slow"))
    ).status_code == 201
    order_id = (await client.post("/api/orders", json={"flowId": "slow"})).json()["id"]
    async with asyncio.timeout(10):
        while (await client.get(f"/api/orders/{order_id}")).json()["execution"][
            "state"
        ] != "running":
            await asyncio.sleep(0.02)
    cancelled = await client.post(f"/api/orders/{order_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["execution"]["state"] == "cancelled"
