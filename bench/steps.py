"""consume-rest-api and send-email through the real engine, beside their clients alone.

    python -m bench.steps [--orders 5000] [--concurrency 32] [--rounds 3]

Prints ``rest_steps_per_s=`` and ``email_steps_per_s=`` (steps completed per second by one
worker on the embedded store, each step a real request to a local server), beside
``raw_rest_per_s=`` and ``raw_smtp_per_s=`` (the same client alone, same concurrency, same
run), and the ratios ``rest_ratio=`` and ``email_ratio=``.

Each round measures the engine, then the client alone, back to back; the figures printed are
the medians over the rounds (a shared machine's noise moves single runs by 20 %), with each
round's ratio on a ``# round`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench.steps_raw import raw_rest_per_s, raw_smtp_per_s, start_http_server, start_smtp_server
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.registry import executors as registered
from fabflow.store import orders
from fabflow.store.repository import Store


async def engine_rate(settings: Settings, step: dict[str, Any], n: int) -> float:
    """Steps per second for ``n`` one-step orders, queued first, then run by one worker."""
    store = Store.open(settings)
    tenant = store.ensure_tenant("bench")
    store.save_flow(tenant, "bench", [step], "bench")
    for i in range(n):
        orders.create_order(store, tenant, {"customer": {"name": f"c{i}"}, "lines": []}, "bench")
    wanted = {k: v for k, v in registered().items() if k == step["type"]}
    async with started_executors(settings, wanted) as executors:
        worker = Worker(store, executors)
        started = time.perf_counter()
        await worker.run(burst=True)
        elapsed = time.perf_counter() - started
    failed = orders.state_counts(store, tenant)["failed"]
    store.close()
    if failed:
        raise SystemExit(f"{failed} executions failed: the benchmark is not measuring success")
    return worker.stats.completed / elapsed


async def main(n: int, concurrency: int, seconds: float, rounds: int) -> None:
    url, _, stop_http = await start_http_server()
    host, port, stop_smtp = await start_smtp_server()
    rest: list[tuple[float, float]] = []
    email: list[tuple[float, float]] = []
    try:
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                base = Settings(
                    data_dir=Path(tmp),
                    outbound_allow=("127.0.0.1",),
                    smtp_url=f"smtp://{host}:{port}",
                    poll_seconds=0.05,
                    concurrency=concurrency,  # executors size their pools from it (SMTP: 16)
                )
                rest_step = {
                    "stepDefinitionId": "erp",
                    "type": "consume-rest-api",
                    "successStatus": "Sent",
                    "options": {"uri": url},
                }
                email_step = {
                    "stepDefinitionId": "mail",
                    "type": "send-email",
                    "successStatus": "Mailed",
                    "options": {
                        "recipients": ["ops@example.com"],
                        "subject": "Order {{ order.id }}",
                        "message": "Hello {{ order.customer.name }}",
                    },
                }
                engine = await engine_rate(base.with_(data_dir=Path(tmp) / "r"), rest_step, n)
                rest.append((engine, await raw_rest_per_s(url, concurrency, seconds)))
                engine = await engine_rate(base.with_(data_dir=Path(tmp) / "e"), email_step, n // 2)
                raw = await raw_smtp_per_s(host, port, min(concurrency, 16), seconds)
                email.append((engine, raw))
            print(
                f"# round {r + 1}: rest {rest[-1][0]:.0f}/{rest[-1][1]:.0f}="
                f"{rest[-1][0] / rest[-1][1]:.2f} email {email[-1][0]:.0f}/{email[-1][1]:.0f}="
                f"{email[-1][0] / email[-1][1]:.2f}",
                flush=True,
            )
    finally:
        await stop_http()
        await stop_smtp()
    for name, raw_name, pairs in (("rest", "raw_rest", rest), ("email", "raw_smtp", email)):
        print(f"{name}_steps_per_s={median(p[0] for p in pairs):.0f}")
        print(f"{raw_name}_per_s={median(p[1] for p in pairs):.0f}")
        print(f"{name}_ratio={median(p[0] / p[1] for p in pairs):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each raw run")
    parser.add_argument("--rounds", type=int, default=3, help="engine-then-raw rounds")
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency, args.seconds, args.rounds))
