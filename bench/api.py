"""Orders accepted per second by ``POST /api/orders`` on ``fabflow serve --workers 0``.

Starts the server as a subprocess on the embedded store (SQLite in a temp folder) on a free
port, creates a key with the CLI and a flow over HTTP, then sends orders from CONCURRENCY
concurrent aiohttp connections (warm-up first, then a bounded count or time) and prints::

    orders_accepted_per_s=...   (the goal is at least 500)

``--poison`` measures again in the same run while a second tenant sends poison orders (each
reproduction of issue 22: nesting 254 deep, integers beyond 64 bits, NUL, NaN, a quantity as
text) from ``--poison-concurrency`` more connections; every valid order must still answer 201
and every poison order a 4xx::

    orders_accepted_with_poison_per_s=...   poison_per_s=...   poison_ratio=...

Run: ``.venv/bin/python bench/api.py [--orders N] [--concurrency C] [--seconds S] [--poison]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


_LINE = {"id": "1", "product": "nameplate", "parameters": {"text": "Ada"}}
# What a hostile or careless tenant sends (issue 22), as raw bodies: every one answers 422.
POISON: list[bytes] = [
    json.dumps({"flowId": "bench", "data": data}).encode()
    for data in ({"a": _nested(253)}, {"n": 2**64}, {"t": "a\u0000b"}, {"x": float("nan")})
] + [
    json.dumps({"flowId": "bench", "customer": {"name": "\u0000"}}).encode(),
    json.dumps({"flowId": "bench", "lines": [{**_LINE, "quantity": "2"}]}).encode(),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_key(env: dict[str, str], tenant: str = "bench") -> str:
    cmd = [FABFLOW, "apikey", "create", "--tenant", tenant]
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
    base: str,
    key: str,
    first: int,
    args: argparse.Namespace,
    count: int,
    seconds: float,
    poison: Poison | None = None,
) -> tuple[int, float, list[float]]:
    """Send up to ``count`` orders (or for ``seconds``), with ``poison`` orders alongside
    when given; ``(accepted, elapsed, latencies)`` of the valid ones."""
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

        valid = asyncio.gather(*(client() for _ in range(concurrency)))
        if poison is None:
            await valid
        else:
            await _with_poison(base, poison, valid)
        return accepted, time.perf_counter() - started, latencies


@dataclass
class Poison:
    """A second tenant's poison orders, sent while the valid ones are: how many were sent."""

    key: str
    concurrency: int
    sent: int = 0
    cpu: float = 0.0  # the server's CPU seconds while they were sent


async def _with_poison(base: str, poison: Poison, valid: asyncio.Future[Any]) -> None:
    """Poison orders from ``poison.concurrency`` connections until ``valid`` is done."""
    headers = {"Authorization": f"Bearer {poison.key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=poison.concurrency)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:

        async def attacker(offset: int) -> None:
            while not valid.done():
                body = POISON[(poison.sent + offset) % len(POISON)]
                async with http.post("/api/orders", data=body) as r:
                    text = await r.text()
                    if not 400 <= r.status < 500:
                        raise RuntimeError(f"poison: HTTP {r.status}: {text[:300]}")
                poison.sent += 1

        attackers = asyncio.gather(*(attacker(n) for n in range(poison.concurrency)))
        await valid
        await attackers


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
            if args.poison:
                poison = Poison(api_key(env, "attacker"), args.poison_concurrency)
                await create_flow(base, poison.key)
                first = 1000 + args.orders
                cpu_before = cpu_seconds(proc.pid)
                poisoned = await load(base, key, first, args, args.orders, args.seconds, poison)
                poison.cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"orders={accepted} concurrency={args.concurrency} seconds={elapsed:.2f}")
    print(f"latency_ms {_percentiles(lat)}")
    # The server's own CPU per order: its capacity, whatever else runs on the machine.
    print(f"server_cpu_ms_per_order={cpu / accepted * 1000:.2f}")
    print(f"orders_accepted_per_s={accepted / elapsed:.0f}")
    if args.poison:
        _report_poison(poison, *poisoned, cpu_per_order=cpu / accepted)


def _percentiles(latencies: list[float]) -> str:
    lat = sorted(latencies)
    return f"p50={statistics.median(lat) * 1000:.1f} p99={lat[int(len(lat) * 0.99) - 1] * 1000:.1f}"


def _report_poison(
    poison: Poison, accepted: int, elapsed: float, lat: list[float], cpu_per_order: float
) -> None:
    print(f"orders_with_poison={accepted} poison_concurrency={poison.concurrency}")
    print(f"latency_with_poison_ms {_percentiles(lat)}")
    # What a refused order costs the server, taking a valid one at its cost without poison.
    per_poison = (poison.cpu - accepted * cpu_per_order) / max(poison.sent, 1)
    print(f"server_cpu_ms_per_poison={per_poison * 1000:.2f}")
    print(f"orders_accepted_with_poison_per_s={accepted / elapsed:.0f}")
    print(f"poison_per_s={poison.sent / elapsed:.0f}")
    print(f"poison_ratio={poison.sent / (poison.sent + accepted):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-lines", action="store_true", help="Orders without lines (no product checks)."
    )
    parser.add_argument(
        "--poison",
        action="store_true",
        help="Measure again while another tenant sends poison orders (same run).",
    )
    parser.add_argument(
        "--poison-concurrency", type=int, default=4, help="Connections sending poison."
    )
    asyncio.run(main(parser.parse_args()))
