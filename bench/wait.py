"""Orders parked on callbacks: one worker's memory while they wait, then every callback.

    python -m bench.wait [--orders 10000] [--concurrency 16] [--control]

Starts ``fabflow serve --workers 1`` (the API and one worker of default concurrency, in one
process) on the embedded store in a temporary folder, as ``bench.api`` starts it, and a lean
receiver in a child process: it answers 202 to the waiting step (``waitForCallback``) and keeps
each order's ``updateUrl``, and notes when each order's next step reaches it. Then:

1. ``idle_rss_mb=``: the serve process's resident memory once ready, before any order;
2. ``--orders`` orders posted over HTTP; once all of them wait, ``parked_orders=`` and
   ``worker_rss_mb=``, the same process's resident memory with them parked;
3. every order called back (``{"outcome": "success"}``, no API key) from ``--concurrency``
   HTTP clients as fast as the API answers: ``callbacks_per_s=``;
4. ``callback_to_next_step_p50_ms=`` and ``_p99_ms=``: from a callback's answer reaching its
   client to the order's next step (a plain REST step) reaching the receiver;
5. ``after_rss_mb=``: the same process once every order has ended.

``--control`` runs the same orders through the same two steps without waiting and prints
``control_rss_mb=`` instead: what taking in and running the orders costs in memory, so that
``worker_rss_mb`` minus it is what the parked waits themselves cost.

Goals (issue 19): ``worker_rss_mb`` under 150 and at most 20 above ``idle_rss_mb``;
``callbacks_per_s`` at least 1,000; ``callback_to_next_step_p50_ms`` under 50.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from bench.api import FABFLOW, api_key, cpu_seconds, free_port, wait_ready

FLOW_ID = "wait"


def flow(receiver: str, wait_for_callback: bool = True) -> dict[str, Any]:
    """Wait for the maker's callback, then tell the receiver (the step timed); without
    ``wait_for_callback``, the same two steps one after the other (``--control``)."""
    wait = {
        "stepDefinitionId": "mes",
        "type": "consume-rest-api",
        "successStatus": "Accepted",
        "options": {"uri": f"{receiver}/mes", "waitForCallback": wait_for_callback},
        "onSuccess": "next",
    }
    after = {
        "stepDefinitionId": "next",
        "type": "consume-rest-api",
        "successStatus": "Booked",
        "options": {"uri": f"{receiver}/next"},
    }
    return {"id": FLOW_ID, "name": "Wait", "steps": [wait, after]}


# --- the receiver, in a child process --------------------------------------------------------

_ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)
# What the receiver saw, in its process: updateUrls and next steps' arrivals, by order id.
_UPDATE_URLS: dict[str, str] = {}
_NEXT_AT: dict[str, float] = {}


class _Receiver(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: ``/mes`` keeps the order's updateUrl, ``/next`` the time the
    order's next step arrived (``time.monotonic()``, one clock for every process on Linux)."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        import orjson

        arrived = time.monotonic()
        order = orjson.loads(b"".join(self.body))
        self.body = []
        if self.url == b"/mes":
            _UPDATE_URLS[order["id"]] = order.get("updateUrl", "")
        else:
            _NEXT_AT.setdefault(order["id"], arrived)
        self.transport.write(_ACCEPTED)


def _serve(conn: Connection) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, "127.0.0.1", 0, backlog=1024)
        conn.send(int(server.sockets[0].getsockname()[1]))
        while (asked := await loop.run_in_executor(None, conn.recv)) != "stop":
            conn.send(dict(_UPDATE_URLS if asked == "urls" else _NEXT_AT))
        server.close()

    uvloop.run(main())


class Receiver:
    """The child process's handle: ``ask("urls")``, ``ask("next")``, ``stop()``."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited loop or threads
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{self.conn.recv()}"

    def ask(self, what: str) -> dict[str, Any]:
        self.conn.send(what)
        answer: dict[str, Any] = self.conn.recv()
        return answer

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()


# --- measuring the server -------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux ``VmRSS``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def settled_rss_mb(pid: int, seconds: float = 2.0) -> float:
    """The process's resident memory after ``seconds`` of rest (its collector, its pools)."""
    await asyncio.sleep(seconds)
    return rss_mb(pid)


async def post_all(
    http: aiohttp.ClientSession, requests: list[tuple[str, dict[str, Any]]], concurrency: int
) -> list[tuple[dict[str, Any], float]]:
    """POST each ``(path, body)`` from ``concurrency`` clients; each JSON answer with the
    ``time.monotonic()`` it arrived at."""
    pending = iter(requests)
    answers: list[tuple[dict[str, Any], float]] = []

    async def client() -> None:
        for path, body in pending:
            async with http.post(path, json=body) as r:
                answer = await r.json()
                if r.status not in (200, 201):
                    raise RuntimeError(f"POST {path}: HTTP {r.status}: {answer}")
            answers.append((answer, time.monotonic()))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return answers


async def count(http: aiohttp.ClientSession, state: str) -> int:
    """The tenant's executions in ``state``."""
    async with http.get("/api/orders", params={"limit": "1"}) as r:
        counts: dict[str, int] = (await r.json())["counts"]
    return counts.get(state, 0)


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Poll ``await check()`` every 0.2 s until true; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what}: not reached in {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


# --- the run ----------------------------------------------------------------------------------


async def place(http: aiohttp.ClientSession, args: argparse.Namespace, state: str) -> None:
    """Post the orders, then wait until every one is in ``state``."""
    orders = [
        ("/api/orders", {"flowId": FLOW_ID, "externalId": f"W-{n}", "customer": {"name": "Ada"}})
        for n in range(args.orders)
    ]
    started = time.monotonic()
    await post_all(http, orders, args.concurrency)

    async def all_there() -> bool:
        return await count(http, state) == int(args.orders)

    await until(f"every order {state}", all_there, 120 + args.orders / 50)
    print(f"# {args.orders} orders {state} in {time.monotonic() - started:.1f} s", file=sys.stderr)


async def park(
    http: aiohttp.ClientSession, receiver: Receiver, args: argparse.Namespace
) -> dict[str, str]:
    """Post the orders and wait for all of them to wait; their updateUrls by order id."""
    await place(http, args, "waiting")
    urls = receiver.ask("urls")
    if len(urls) != args.orders:
        raise SystemExit(f"the receiver got {len(urls)} updateUrls for {args.orders} orders")
    return urls


async def call_back(
    http: aiohttp.ClientSession, urls: dict[str, str], pid: int, concurrency: int
) -> dict[str, float]:
    """Every callback as fast as the API takes them; when each answer arrived, by order id."""
    body = {"outcome": "success", "status": "Printed"}
    requests = [(URL(url).path, body) for url in urls.values()]
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    answers = await post_all(http, requests, concurrency)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu_before
    print(f"callbacks={len(answers)} seconds={elapsed:.2f}")
    print(f"server_cpu_ms_per_callback={cpu / len(answers) * 1000:.2f}")
    print(f"callbacks_per_s={len(answers) / elapsed:.0f}")
    return {answer["orderId"]: at for answer, at in answers}


async def next_steps(receiver: Receiver, answered: dict[str, float]) -> None:
    """Wait for every next step, then print the latencies from the callbacks' answers."""
    arrived: dict[str, float] = {}

    async def all_arrived() -> bool:
        arrived.update(receiver.ask("next"))
        return len(arrived) >= len(answered)

    await until("every next step", all_arrived, 60 + len(answered) / 50)
    # A next step can reach the receiver before its callback's answer reaches the client
    # (the worker is woken before the answer is sent): that counts as 0.
    latencies = sorted(max(0.0, arrived[o] - at) * 1000 for o, at in answered.items())
    early = sum(1 for o, at in answered.items() if arrived[o] < at)
    print(f"# {early} next steps arrived before their callback's answer", file=sys.stderr)
    last_answer = max(answered.values())
    during = sum(1 for at in arrived.values() if at <= last_answer)
    print(f"# next steps done while callbacks still arrived: {during}", file=sys.stderr)
    print(f"callback_to_next_step_p50_ms={statistics.median(latencies):.1f}")
    print(f"callback_to_next_step_p99_ms={latencies[int(len(latencies) * 0.99) - 1]:.1f}")


async def run(args: argparse.Namespace, tmp: str, receiver: Receiver) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABFLOW_")}
    env |= {
        "FABFLOW_DATA_DIR": tmp,
        "FABFLOW_LOG_LEVEL": "WARNING",
        "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
        "FABFLOW_PUBLIC_URL": base,
    }
    headers = {"Authorization": f"Bearer {api_key(env)}"}
    proc = subprocess.Popen([FABFLOW, "serve", "--workers", "1", "--port", str(port)], env=env)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        await wait_ready(base, proc)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
            await post_all(http, [("/api/flows", flow(receiver.url, not args.control))], 1)
            print(f"idle_rss_mb={await settled_rss_mb(proc.pid):.1f}")
            if args.control:
                await place(http, args, "succeeded")
                print(f"control_rss_mb={await settled_rss_mb(proc.pid):.1f}")
                return
            urls = await park(http, receiver, args)
            print(f"parked_orders={await count(http, 'waiting')}")
            print(f"worker_rss_mb={await settled_rss_mb(proc.pid):.1f}")
            answered = await call_back(http, urls, proc.pid, args.concurrency)
            await next_steps(receiver, answered)
            print(f"after_rss_mb={await settled_rss_mb(proc.pid, 1.0):.1f}")
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="Orders parked (10,000).")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="HTTP clients posting orders and callbacks."
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="The same orders through the same steps without waiting: control_rss_mb=.",
    )
    args = parser.parse_args()
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="fabflow-bench-") as tmp:
            asyncio.run(run(args, tmp, receiver))
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
