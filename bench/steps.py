"""consume-rest-api and send-email through the real engine, beside their clients alone.

    python -m bench.steps [--orders 5000] [--concurrency 32] [--rounds 5]

Prints ``rest_steps_per_s=`` and ``email_steps_per_s=`` (steps completed per second by one
worker on the embedded store, each step a real request to a local server), beside
``raw_rest_per_s=`` and ``raw_smtp_per_s=`` (the same client alone, same concurrency, same
run), and the ratios ``rest_ratio=`` and ``email_ratio=``.

Beside them, where the time goes: ``rest_cpu_us_per_step=`` (CPU of the whole engine process
per step: event loop, database thread, SQLite), ``rest_loop_cpu_us_per_step=`` (the event loop's
thread alone) and ``raw_rest_cpu_us_per_request=`` (the client alone), and the same for email.
The engine's threads share one interpreter lock, so the process's CPU per step bounds its rate.

The engine is timed in its steady state, as the client alone is timed once warm: from the
worker's 64th recorded step to its last, so that its start-up (connecting, parsing the flow,
opening its first connections) and its shutdown are left out; ``rest_whole_run_steps_per_s=``
and ``rest_whole_run_ratio=`` keep them in (the same for email).

Each round measures the engine and the client alone back to back, the engine first in odd
rounds and the client first in even ones (so that a drift of the host's speed cancels out);
the figures printed are the medians over the rounds (a shared machine's noise moves single
runs by 20 %), with each round's ratio on a ``# round`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from statistics import median
from typing import Any, NamedTuple

from bench.steps_raw import raw_rest_per_s, raw_smtp_per_s, start_http_server, start_smtp_server
from fabflow.engine.runtime import started_executors, tune_collector
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.registry import executors as registered
from fabflow.store import orders
from fabflow.store.repository import Store

WARM_STEPS = 64  # two rounds of the default concurrency: every connection open, pages cached


class Rate(NamedTuple):
    per_s: float
    cpu_us: float  # CPU of this process per step or request
    loop_cpu_us: float  # CPU of the event loop's thread alone
    whole_run_per_s: float = 0.0  # the engine's: start-up and shutdown included


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, time.thread_time()


def _rate(
    done: int,
    elapsed: float,
    before: tuple[float, float],
    after: tuple[float, float] | None = None,
) -> Rate:
    """``done`` in ``elapsed`` seconds, with the CPU used from ``before`` to ``after`` (now)."""
    spent = zip(after or _cpu(), before, strict=True)
    process, thread = (now - then for now, then in spent)
    return Rate(done / elapsed, process / done * 1e6, thread / done * 1e6)


class _SteadyState:
    """The worker's ``until`` callback: marks its steady state, from its ``warm``-th recorded
    step to its ``total``-th, and then stops it (checked after each database cycle)."""

    def __init__(self, worker: Worker, warm: int, total: int) -> None:
        self.worker, self.warm, self.total = worker, warm, total
        self.start: tuple[float, tuple[float, float], int] | None = None
        self.end: tuple[float, tuple[float, float], int] | None = None

    def __call__(self) -> bool:
        done = self.worker.stats.completed
        if self.start is None and done >= self.warm:
            self.start = (time.perf_counter(), _cpu(), done)
        if done >= self.total:
            self.end = (time.perf_counter(), _cpu(), done)
            return True
        return False

    def rate(self) -> Rate:
        if self.start is None or self.end is None:
            raise SystemExit("the worker stopped before its last step: nothing to measure")
        (started, cpu, first), (ended, cpu_after, last) = self.start, self.end
        return _rate(last - first, ended - started, cpu, cpu_after)


async def engine_rate(settings: Settings, step: dict[str, Any], n: int) -> Rate:
    """Steps per second for ``n`` one-step orders, queued first, then run by one worker.

    Timed in the worker's steady state, as the client alone is timed once warm: from its
    ``WARM_STEPS``-th recorded step to its last (its start-up, the flow's first parse and its
    first connections, and its shutdown are left out; a worker is a long-lived process).
    ``whole_run_per_s`` keeps the rate with them."""
    store = Store.open(settings)
    tenant = store.ensure_tenant("bench")
    store.save_flow(tenant, "bench", [step], "bench")
    for i in range(n):
        orders.create_order(store, tenant, {"customer": {"name": f"c{i}"}, "lines": []}, "bench")
    wanted = {k: v for k, v in registered().items() if k == step["type"]}
    async with started_executors(settings, wanted) as executors:
        worker = Worker(store, executors)
        tune_collector()  # as ``fabflow worker`` does
        steady = _SteadyState(worker, min(WARM_STEPS, n // 10), n)
        started = time.perf_counter()
        try:  # until the n-th step is recorded (a stall would otherwise never end)
            await asyncio.wait_for(worker.run(until=steady), timeout=60 + n / 50)
        except TimeoutError:
            done = worker.stats.completed
            raise SystemExit(f"the worker stalled: {done} of {n} steps recorded") from None
        whole = worker.stats.completed / (time.perf_counter() - started)
        rate = steady.rate()._replace(whole_run_per_s=whole)
    failed = orders.state_counts(store, tenant)["failed"]
    store.close()
    if failed:
        raise SystemExit(f"{failed} executions failed: the benchmark is not measuring success")
    return rate


async def client_rate(run: Awaitable[float], seconds: float) -> Rate:
    """The rate a raw client run reports, with the CPU it took (the client runs here)."""
    cpu = _cpu()
    per_s = await run
    return _rate(max(round(per_s * seconds), 1), seconds, cpu)


async def _pair(
    engine: Awaitable[Rate], client: Awaitable[Rate], client_first: bool
) -> tuple[Rate, Rate]:
    """The engine's rate and the client's alone, measured back to back in the order given
    (each starts when awaited)."""
    if client_first:
        raw = await client
        return await engine, raw
    measured = await engine
    return measured, await client


async def main(n: int, concurrency: int, seconds: float, rounds: int) -> None:
    url, _, stop_http = await start_http_server()
    host, port, stop_smtp = await start_smtp_server()
    rest: list[tuple[Rate, Rate]] = []
    email: list[tuple[Rate, Rate]] = []
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
                raw_first = r % 2 == 1  # alternate: a drift of the host's speed cancels out
                rest_at = base.with_(data_dir=Path(tmp) / "r")
                engine = engine_rate(rest_at, rest_step, n)
                raw = client_rate(raw_rest_per_s(url, concurrency, seconds), seconds)
                rest.append(await _pair(engine, raw, raw_first))
                email_at = base.with_(data_dir=Path(tmp) / "e")
                engine = engine_rate(email_at, email_step, n // 2)
                smtp = raw_smtp_per_s(host, port, min(concurrency, 16), seconds)
                email.append(await _pair(engine, client_rate(smtp, seconds), raw_first))
            (rest_engine, rest_raw), (email_engine, email_raw) = rest[-1], email[-1]
            print(
                f"# round {r + 1}: rest {rest_engine.per_s:.0f}/{rest_raw.per_s:.0f}="
                f"{rest_engine.per_s / rest_raw.per_s:.2f} email {email_engine.per_s:.0f}/"
                f"{email_raw.per_s:.0f}={email_engine.per_s / email_raw.per_s:.2f}",
                flush=True,
            )
    finally:
        await stop_http()
        await stop_smtp()
    for name, raw_name, pairs in (("rest", "raw_rest", rest), ("email", "raw_smtp", email)):
        print(f"{name}_steps_per_s={median(e.per_s for e, _ in pairs):.0f}")
        print(f"{raw_name}_per_s={median(r.per_s for _, r in pairs):.0f}")
        print(f"{name}_ratio={median(e.per_s / r.per_s for e, r in pairs):.2f}")
        print(f"{name}_whole_run_steps_per_s={median(e.whole_run_per_s for e, _ in pairs):.0f}")
        whole = median(e.whole_run_per_s / r.per_s for e, r in pairs)
        print(f"{name}_whole_run_ratio={whole:.2f}")
    for name, raw_name, pairs in (("rest", "raw_rest", rest), ("email", "raw_smtp", email)):
        print(f"{name}_cpu_us_per_step={median(e.cpu_us for e, _ in pairs):.0f}")
        print(f"{name}_loop_cpu_us_per_step={median(e.loop_cpu_us for e, _ in pairs):.0f}")
        print(f"{raw_name}_cpu_us_per_request={median(r.cpu_us for _, r in pairs):.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each raw run")
    parser.add_argument("--rounds", type=int, default=5, help="engine and client-alone rounds")
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency, args.seconds, args.rounds))
