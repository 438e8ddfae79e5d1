"""Orders accepted per second by ``POST /api/orders`` on ``fabflow serve --workers 0``.

Starts the server as a subprocess on the embedded store (SQLite in a temp folder) on a free
port, creates a key with the CLI and a flow over HTTP, then sends orders from CONCURRENCY
concurrent aiohttp connections (warm-up first, then a bounded count or time) and prints::

    orders_accepted_per_s=...   (the goal is at least 500)

Run: ``.venv/bin/python bench/api.py [--orders N] [--concurrency C] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

FABFLOW = str(Path(sys.executable).with_name("fabflow"))
FLOW = {
    "id": "bench",
    "name": "Bench",
    "steps": [
        {
            "stepDefinitionId": "notify",
            "type": "consume-rest-api",
            "successStatus": "Sent",
            "options": {"uri": "https://example.com/orders"},
        }
    ],
}


def order(n: int, lines: bool = True) -> dict[str, Any]:
    """A typical order: one nameplate line (intake checks the product and fits its text)."""
    line = {"id": "1", "product": "nameplate", "parameters": {"text": f"Ada {n}"}}
    return {
        "externalId": f"BENCH-{n}",
        "flowId": "bench",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "lines": [line] if lines else [],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_key(env: dict[str, str]) -> str:
    cmd = [FABFLOW, "apikey", "create", "--tenant", "bench"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            try:
                async with http.get(f"{base}/api/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not become ready in 30 s")


async def create_flow(base: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{base}/api/flows", json=FLOW) as r,
    ):
        if r.status != 201:
            raise RuntimeError(f"creating the flow: HTTP {r.status}: {await r.text()}")


async def load(
    base: str, key: str, first: int, args: argparse.Namespace, count: int, seconds: float
) -> tuple[int, float, list[float]]:
    """Send up to ``count`` orders (or for ``seconds``); ``(accepted, elapsed, latencies)``."""
    headers = {"Authorization": f"Bearer {key}"}
    concurrency = args.concurrency
    connector = aiohttp.TCPConnector(limit=concurrency)
    numbers = iter(range(first, first + count))
    latencies: list[float] = []
    accepted = 0
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            nonlocal accepted
            for n in numbers:
                if time.perf_counter() > deadline:
                    return
                sent = time.perf_counter()
                async with http.post("/api/orders", json=order(n, not args.no_lines)) as r:
                    text = await r.text()
                    if r.status != 201:
                        raise RuntimeError(f"order {n}: HTTP {r.status}: {text[:300]}")
                latencies.append(time.perf_counter() - sent)
                accepted += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return accepted, time.perf_counter() - started, latencies


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fabflow-bench-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FABFLOW_DATA_DIR": tmp, "FABFLOW_LOG_LEVEL": "WARNING"}
        key = api_key(env)
        cmd = [FABFLOW, "serve", "--workers", "0", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env)
        try:
            await wait_ready(base, proc)
            await create_flow(base, key)
            await load(base, key, 0, args, 300, 30)  # warm-up
            cpu_before = cpu_seconds(proc.pid)
            accepted, elapsed, lat = await load(base, key, 1000, args, args.orders, args.seconds)
            cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.terminate()
            proc.wait(30)
    lat.sort()
    print(f"orders={accepted} concurrency={args.concurrency} seconds={elapsed:.2f}")
    print(
        f"latency_ms p50={statistics.median(lat) * 1000:.1f} "
        f"p99={lat[int(len(lat) * 0.99) - 1] * 1000:.1f}"
    )
    # The server's own CPU per order: its capacity, whatever else runs on the machine.
    print(f"server_cpu_ms_per_order={cpu / accepted * 1000:.2f}")
    print(f"orders_accepted_per_s={accepted / elapsed:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-lines", action="store_true", help="Orders without lines (no product checks)."
    )
    asyncio.run(main(parser.parse_args()))
