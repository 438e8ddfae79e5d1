"""The spec's whole example flow, end to end: orders per second, latency, and the bound.

    python -m bench.e2e [--orders 2000] [--db sqlite|postgres] [--rate R] [--no-parts]

Starts an HTTP receiver and an SMTP server (aiosmtpd) in child processes (``bench.steps_raw``)
and fabflow as a shop runs it: ``fabflow serve`` (one in-process worker) on SQLite, or with
``--db postgres`` an API node (``serve --workers 0``) and two ``fabflow worker`` processes on a
fresh database. The flow is ``fabflow demo``'s, the spec's example (generate -> consume ->
email, error -> email), its REST step pointed at the receiver. ``--orders`` orders of one line
each (nameplates, engraved rings, boxes with lids, in turn) are posted through the API from
``--concurrency`` clients, as fast as it takes them or, with ``--rate``, paced at R a second.

Prints, from the orders' own timestamps (intake ``createdAt`` to the last attempt's end):

- ``e2e_orders_per_s=`` (first intake to last end), ``e2e_p50_ms=``, ``e2e_p99_ms=``;
- per step, the mean attempt duration and time queued; the CPU of each process (the API and
  workers, the generation processes below them, the receivers, PostgreSQL's) per order;
- unless ``--no-parts``, the parts alone in the same run (``bench.e2e_parts``), first:
  ``gen_orders_per_s=``, ``rest_steps_per_s=``, ``email_steps_per_s=``, ``intake_per_s=``,
  then ``e2e_bound_orders_per_s=`` (the slowest) and ``e2e_ratio=`` (goal: at least 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.api import FABFLOW, api_key, cpu_seconds, free_port, wait_ready
from bench.e2e_parts import (
    Parts,
    descendants,
    fresh_database,
    generation_rate,
    intake_rate,
    step_rates,
)
from bench.steps_raw import start_http_server, start_smtp_server
from bench.wait import post_all
from fabflow.cli.admin import demo_flow
from fabflow.settings import Settings

FLOW_ID = "spec"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def order(n: int) -> dict[str, Any]:
    """Order ``n``: one line, a nameplate, an engraved ring or a box with its lid in turn."""
    lines = [
        {"product": "nameplate", "parameters": {"text": f"Ada {n}", "hole": n % 2 == 0}},
        {"product": "ring", "parameters": {"size": 5 + n % 8, "text": f"Ada & Charles {n}"}},
        {"product": "box", "parameters": {"lid": True, "width": 50 + n % 30}},
    ][n % 3]
    return {
        "externalId": f"E2E-{n}",
        "flowId": FLOW_ID,
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "lines": [{"id": "1", **lines}],
    }


def flow(receiver: str) -> dict[str, Any]:
    return {"id": FLOW_ID, "name": "Spec example", "steps": demo_flow(receiver)}


# --- fabflow as a shop runs it ---------------------------------------------------------------


@asynccontextmanager
async def fabflow(env: dict[str, str], db: str, port: int) -> AsyncIterator[list[int]]:
    """The serving processes, ready: their pids (the API node first)."""
    serve = [FABFLOW, "serve", "--port", str(port), "--workers", "1" if db == "sqlite" else "0"]
    procs = [subprocess.Popen(serve, env=env)]
    try:
        await wait_ready(f"http://127.0.0.1:{port}", procs[0])
        if db == "postgres":
            procs += [subprocess.Popen([FABFLOW, "worker"], env=env) for _ in range(2)]
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


async def post_paced(
    http: aiohttp.ClientSession, bodies: list[dict[str, Any]], rate: float
) -> None:
    """Order ``i`` posted at ``i / rate`` seconds from now, whatever the earlier ones do."""
    started = time.monotonic()
    tasks = []
    for i, body in enumerate(bodies):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post_all(http, [("/api/orders", body)], 1)))
    await asyncio.gather(*tasks)


class Cpu:
    """CPU seconds of named groups of processes, from ``start()`` to ``stop()``."""

    def __init__(self, groups: dict[str, list[int]], with_children: set[str]) -> None:
        self.groups, self.with_children = groups, with_children
        self.before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        for name, pids in self.groups.items():
            seen[name] = sum(_cpu(p) for p in pids)
            if name in self.with_children:
                seen[name + "_children"] = sum(_cpu(c) for p in pids for c in descendants(p))
        seen["postgres"] = sum(_cpu(p) for p in _named("postgres"))
        return seen

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> None:
        # Children (the generation processes) start with the first order: 0 before.
        self.spent = {k: v - self.before.get(k, 0.0) for k, v in self._now().items()}


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError):
        return 0.0


def _named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


# --- reading the orders back ----------------------------------------------------------------


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def resources(http: aiohttp.ClientSession, ids: list[str]) -> list[dict[str, Any]]:
    """Every order resource, from 16 clients."""
    found: list[dict[str, Any]] = []
    pending = iter(ids)

    async def client() -> None:
        for oid in pending:
            async with http.get(f"/api/orders/{oid}") as r:
                found.append(await r.json())

    await asyncio.gather(*(client() for _ in range(16)))
    return found


def report(found: list[dict[str, Any]], cpu: Cpu) -> tuple[float, float]:
    """Print the flow's figures; returns its orders per second and CPU ms per order (every
    process of ours, PostgreSQL's when it is the store)."""
    ended = [o for o in found if o["execution"]["state"] == "succeeded"]
    if len(ended) != len(found):
        bad = next(o for o in found if o["execution"]["state"] != "succeeded")
        raise SystemExit(f"{len(found) - len(ended)} orders did not succeed, first: {bad}")
    spans = []
    steps: dict[str, list[tuple[float, float]]] = {}
    for o in found:
        attempts = o["execution"]["attempts"]
        spans.append((_ts(o["createdAt"]), max(_ts(a["endedAt"]) for a in attempts)))
        for a in attempts:
            queued = _ts(a["startedAt"]) - _ts(a["scheduledAt"])
            steps.setdefault(a["stepDefinitionId"], []).append((a["durationMs"], queued * 1000))
    latencies = sorted((end - start) * 1000 for start, end in spans)
    slowest = max(range(len(spans)), key=lambda i: spans[i][1] - spans[i][0])
    print(f"# slowest order: {_timeline(found[slowest])}")
    elapsed = max(e for _, e in spans) - min(s for s, _ in spans)
    rate = len(found) / elapsed
    n = len(found)
    print(f"e2e_orders={n} e2e_seconds={elapsed:.2f}")
    for step, values in steps.items():
        waits = sorted(w for _, w in values)
        print(
            f"# step {step}: mean {statistics.fmean(d for d, _ in values):.1f} ms, queued "
            f"{statistics.fmean(waits):.1f} ms mean, {_pct(waits, 0.99):.0f} ms p99"
        )
    for name, seconds in cpu.spent.items():
        print(f"cpu_ms_per_order_{name}={seconds / n * 1000:.2f}")
    ours = [s for k, s in cpu.spent.items() if k != "postgres" or "workers" in cpu.spent]
    cpu_ms = sum(ours) / n * 1000
    print(f"e2e_cpu_ms_per_order={cpu_ms:.1f}")
    print(f"e2e_p50_ms={statistics.median(latencies):.0f}")
    print(f"e2e_p99_ms={_pct(latencies, 0.99):.0f}")
    print(f"e2e_orders_per_s={rate:.1f}")
    return rate, cpu_ms


def _timeline(order: dict[str, Any]) -> str:
    """Where one order's time went: each attempt's queueing and running, in ms from intake."""
    created = _ts(order["createdAt"])
    parts = []
    for a in order["execution"]["attempts"]:
        at = [round((_ts(a[k]) - created) * 1000) for k in ("scheduledAt", "startedAt", "endedAt")]
        parts.append(f"{a['stepDefinitionId']} {at[0]}/{at[1]}/{at[2]}")
    line = order["lines"][0]["product"]
    return f"{line}: " + ", ".join(parts) + " (scheduled/started/ended)"


def _pct(values: list[float], q: float) -> float:
    return values[max(0, int(len(values) * q) - 1)]


# --- the run ----------------------------------------------------------------------------------


async def whole_flow(
    args: argparse.Namespace, env: dict[str, str], receiver_pids: list[int], receiver: str
) -> tuple[float, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "FABFLOW_PUBLIC_URL": base}
    headers = {"Authorization": f"Bearer {api_key(env)}"}
    bodies = [order(n) for n in range(args.orders)]
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 64))
    async with (
        fabflow(env, args.db, port) as pids,
        aiohttp.ClientSession(base, headers=headers, connector=connector) as http,
    ):
        await post_all(http, [("/api/flows", flow(receiver))], 1)
        groups = {"api": pids[:1], "workers": pids[1:], "receivers": receiver_pids}
        cpu = Cpu({k: v for k, v in groups.items() if v}, {"api", "workers"})
        cpu.start()
        if args.rate:
            await post_paced(http, bodies, args.rate)
        else:
            await post_all(http, [("/api/orders", b) for b in bodies], args.concurrency)

        await _until_done(http, args.orders)
        cpu.stop()
        listed = await _ids(http)
        return report(await resources(http, listed), cpu)


async def _until_done(http: aiohttp.ClientSession, orders: int) -> None:
    """Every order ended: asked once a second (the orders' own timestamps time them, and
    each question costs the server the counts of every state)."""
    deadline = time.monotonic() + 120 + orders
    while time.monotonic() < deadline:
        async with http.get("/api/orders", params={"limit": "1"}) as r:
            counts: dict[str, int] = (await r.json())["counts"]
        if counts.get("succeeded", 0) + counts.get("failed", 0) >= orders:
            return
        await asyncio.sleep(1.0)
    raise SystemExit(f"the orders did not all end in {120 + orders} s")


async def _ids(http: aiohttp.ClientSession) -> list[str]:
    ids: list[str] = []
    params = {"limit": "200"}
    while True:
        async with http.get("/api/orders", params=params) as r:
            page = await r.json()
        ids += [o["id"] for o in page["orders"]]
        if not page.get("nextCursor"):
            return ids
        params = {"limit": "200", "cursor": page["nextCursor"]}


async def parts(
    args: argparse.Namespace, env: dict[str, str], url: str, smtp: str, server: str
) -> Parts:
    """Each part alone, on ``min(orders, 600)`` of the same orders."""
    sample = [order(n) for n in range(min(args.orders, 600))]
    generation, gen_cpu = await generation_rate(sample, os.cpu_count() or 1)
    print(f"gen_orders_per_s={generation:.1f}  gen_cpu_ms_per_order={gen_cpu:.1f}", flush=True)
    settings = Settings(
        data_dir=Path("."),
        database_url=server,
        outbound_allow=("127.0.0.1",),
        smtp_url=smtp,
    )
    alone = [
        {k: v for k, v in s.items() if k not in ("onSuccess", "onError")} for s in demo_flow(url)
    ]
    rest, email = await step_rates(settings, {"rest": alone[1], "email": alone[2]}, 2000)
    print(f"rest_steps_per_s={rest:.0f}  email_steps_per_s={email:.0f}", flush=True)
    intake_env = {**env, "FABFLOW_DATABASE_URL": server} if server else env
    intake, intake_cpu = await intake_rate(intake_env, flow(url), sample, args.concurrency)
    print(f"intake_per_s={intake:.0f}  intake_cpu_ms_per_order={intake_cpu:.2f}", flush=True)
    return Parts(generation, rest, email, intake, gen_cpu)


async def run(args: argparse.Namespace, tmp: str) -> None:
    url, _, stop_http = await start_http_server()
    host, smtp_port, stop_smtp = await start_smtp_server()
    smtp = f"smtp://{host}:{smtp_port}"
    receivers = descendants(os.getpid())  # before any pool of ours starts
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABFLOW_")}
    env |= {
        "FABFLOW_DATA_DIR": tmp,
        "FABFLOW_LOG_LEVEL": "WARNING",
        "FABFLOW_OUTBOUND_ALLOW": "127.0.0.1",
        "FABFLOW_SMTP_URL": smtp,
    }
    server = os.environ.get("FABFLOW_DATABASE_URL", PG_SERVER) if args.db == "postgres" else ""
    if args.processes:
        env["FABFLOW_PRODUCTION_PROCESSES"] = str(args.processes)
    elif args.db == "postgres":  # one generation process per core across the two workers
        env["FABFLOW_PRODUCTION_PROCESSES"] = str(max(1, (os.cpu_count() or 2) // 2))
    try:
        bound = None if args.no_parts else await parts(args, env, url, smtp, server)
        if server:
            with fresh_database(server) as database:
                rate, cpu_ms = await whole_flow(
                    args, {**env, "FABFLOW_DATABASE_URL": database}, receivers, url
                )
        else:
            rate, cpu_ms = await whole_flow(args, env, receivers, url)
    finally:
        await stop_http()
        await stop_smtp()
    if bound is not None:
        print(f"# slowest part alone: {bound.slowest}")
        print(f"e2e_bound_orders_per_s={bound.bound:.1f}")
        print(f"e2e_ratio={rate / bound.bound:.2f}")
        # Less noisy on a shared machine: the generation's own CPU over the whole flow's.
        print(f"e2e_cpu_ratio={bound.gen_cpu_ms / cpu_ms:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="Orders through the flow (2,000).")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP clients posting orders.")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="Orders posted per second (0: all at once)."
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="FABFLOW_PRODUCTION_PROCESSES of each serving process (0: fabflow's default; "
        "on PostgreSQL, one per core across the two workers).",
    )
    parser.add_argument("--no-parts", action="store_true", help="The whole flow only, no bound.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fabflow-e2e-") as tmp:
        asyncio.run(run(args, tmp))
    print(f"# {args.db}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
