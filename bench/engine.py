"""Engine throughput and latency with a no-op step, beside a bare claim-then-complete loop.

    python bench/engine.py --db sqlite --orders 5000
    python bench/engine.py --db postgres --workers 1,2,4 --orders 3000
    python bench/engine.py --db sqlite --choices --orders 3000

``--tenants`` runs the same no-op flow for two tenants: steps per second with both tenants'
backlogs queued (``steps_per_s_two_tenants=``, claims shared round-robin, beside
``steps_per_s=`` for one tenant's in the same run), then how long one order of a second tenant,
queued behind the first tenant's backlog, waits for its first step (``fair_start_ms=``) and
for its end (``fair_done_ms=``).

``--choices`` runs the same no-op flow twice in one process, once as is and once with a
``choice`` between every two no-op steps (evaluated in the worker's transition), and prints
``steps_per_s=`` (no-op steps), ``steps_per_s_with_choices=`` (no-op steps, the choices not
counted) and ``choice_ratio=`` (the goal is at least 0.9).

Prints ``steps_per_s=`` (one line per worker count), transition latency percentiles, the
wake-up latency (attempt created to attempt started, measured on single orders arriving while
workers are idle), the raw loop's ``raw_*_jobs_per_s=`` in the same run, and the ratio.
PostgreSQL runs in a scratch database created and dropped here (FABFLOW_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, names the server).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabflow.engine.worker import Worker
from fabflow.flows.options import OptionsModel
from fabflow.settings import Settings
from fabflow.steps.base import StepContext, StepExecutor, StepResult
from fabflow.steps.registry import register
from fabflow.store import orders
from fabflow.store.repository import Store

# --with-order: the no-op asks for the full order resource, as the REST step does.
NEEDS_ORDER = "--with-order" in sys.argv


class NoopOptions(OptionsModel):
    pass


# --tenants: when the steps of the tenants named here started (perf_counter), in this process,
# and how long the steps of those named in SLOW take (seconds).
STARTED: dict[str, list[float]] = {}
SLOW: dict[str, float] = {}


class Noop(StepExecutor):
    type_name = "bench-noop"
    options_model = NoopOptions
    needs_order = NEEDS_ORDER

    async def execute(self, ctx: StepContext) -> StepResult:
        if STARTED:
            if ctx.tenant in STARTED:
                STARTED[ctx.tenant].append(time.perf_counter())
            await asyncio.sleep(SLOW.get(ctx.tenant, 0))
        return StepResult()


register(Noop)

FLOW = [
    {
        "stepDefinitionId": f"s{i}",
        "type": "bench-noop",
        "successStatus": f"step {i} done",
        "options": {},
        **({"onSuccess": f"s{i + 1}"} if i < 2 else {}),
    }
    for i in range(3)
]


# The same three no-op steps with a choice between every two (on the order's data).
CHOICE_FLOW: list[dict[str, Any]] = []
for _i in range(3):
    CHOICE_FLOW.append({**FLOW[_i], **({"onSuccess": f"c{_i}"} if _i < 2 else {})})
    if _i < 2:
        rule = {"when": 'order.data.country == "BE"', "next": f"s{_i + 1}"}
        CHOICE_FLOW.append(
            {
                "stepDefinitionId": f"c{_i}",
                "type": "choice",
                "options": {"rules": [rule], "otherwise": f"s{_i + 1}"},
            }
        )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


# -- fabflow ---------------------------------------------------------------------------------


def fill(settings: Settings, n: int, flow: str = "bench", tenant_name: str = "bench") -> str:
    store = Store.open(settings)
    tenant = store.ensure_tenant(tenant_name)
    store.save_flow(tenant, "bench", FLOW, "bench")
    store.save_flow(tenant, "bench-choices", CHOICE_FLOW, "bench with choices")
    for i in range(n):
        data = {"country": "BE" if i % 2 else "US"}
        orders.create_order(store, tenant, {"lines": [], "data": data}, flow)
    store.close()
    return tenant


def worker_process(settings: Settings, concurrency: int, out: Any) -> None:
    store = Store.open(settings, pre_ping=False)  # as `fabflow worker` opens it
    worker = Worker(store, {"bench-noop": Noop(settings)}, concurrency=concurrency)
    asyncio.run(worker.run(burst=True))
    out.put((worker.stats.completed, list(worker.stats.transition_ms)))
    store.close()


def run_workers(
    settings: Settings, processes: int, concurrency: int
) -> tuple[int, float, list[float]]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=worker_process, args=(settings, concurrency, out))
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    completed = sum(r[0] for r in results)
    transitions = [ms for r in results for ms in r[1]]
    return completed, elapsed, transitions


async def measure_wakeups(settings: Settings, tenant: str, samples: int) -> list[float]:
    """Orders created one at a time while a worker idles: attempt created -> attempt started.

    The worker runs in this process but is woken only the way other processes are (LISTEN on
    PostgreSQL, polling on SQLite): the in-process shortcut is disabled.
    """
    store = Store.open(settings, pre_ping=False)  # as `fabflow worker` opens it
    worker = Worker(store, {"bench-noop": Noop(settings)}, concurrency=8)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    store.on_enqueue.clear()
    before = len(worker.stats.wakeup_ms)
    for _ in range(samples):
        await asyncio.get_running_loop().run_in_executor(
            None, orders.create_order, store, tenant, {"lines": []}, "bench"
        )
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.5)
    worker.stop()
    await task
    store.close()
    # Only first attempts: later steps are scheduled by the worker itself.
    wakeups = list(worker.stats.wakeup_ms)[before:]  # far fewer than the samples kept
    return wakeups[::3] or wakeups


async def measure_fair_start(settings: Settings, orders_a: int) -> tuple[float, float]:
    """One order of tenant B queued behind tenant A's backlog of ``orders_a`` orders (steps
    of 50 ms: about two seconds of claims ahead of B's), with a worker already running A's:
    from B's order created to its first step's start, and to its last step's (milliseconds)."""
    SLOW[fill(settings, orders_a, tenant_name="shop-a")] = 0.05
    store = Store.open(settings, pre_ping=False)
    tenant_b = store.ensure_tenant("shop-b")
    store.save_flow(tenant_b, "bench", FLOW, "bench")
    STARTED[tenant_b] = []
    worker = Worker(store, {"bench-noop": Noop(settings)}, concurrency=64)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)  # A's steps hold the worker
    created = time.perf_counter()
    await asyncio.get_running_loop().run_in_executor(
        None, orders.create_order, store, tenant_b, {"lines": []}, "bench"
    )
    while len(STARTED[tenant_b]) < 3:  # its three no-op steps: the last started is its end
        await asyncio.sleep(0.001)
    first, last = STARTED[tenant_b][0], STARTED[tenant_b][-1]
    worker.stop()
    await task
    store.close()
    STARTED.clear()
    SLOW.clear()
    return (first - created) * 1000, (last - created) * 1000


# -- raw loops -------------------------------------------------------------------------------


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT, run_after REAL)")
    conn.execute("CREATE INDEX jobs_q ON jobs(state, run_after)")
    conn.executemany("INSERT INTO jobs(state, run_after) VALUES ('queued', 0)", [()] * n)
    started = time.perf_counter()
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "UPDATE jobs SET state='running' WHERE id = (SELECT id FROM jobs WHERE state='queued'"
            " ORDER BY run_after LIMIT 1) RETURNING id"
        ).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE jobs SET state='done' WHERE id=? AND state='running'", row)
        conn.execute("COMMIT")
        done += 1
    return done / (time.perf_counter() - started)


def raw_pg(url: str, n: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE raw_jobs (id BIGSERIAL PRIMARY KEY, state TEXT,"
            " run_after DOUBLE PRECISION)"
        )
        conn.execute("CREATE INDEX raw_jobs_q ON raw_jobs(state, run_after)")
        conn.execute(
            "INSERT INTO raw_jobs(state, run_after) SELECT 'queued', 0 FROM generate_series(1, %s)",
            (n,),
        )
        started = time.perf_counter()
        done = 0
        while True:
            with conn.transaction():
                row = conn.execute(
                    "UPDATE raw_jobs SET state='running' WHERE id = (SELECT id FROM raw_jobs"
                    " WHERE state='queued' ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    " RETURNING id"
                ).fetchone()
            if row is None:
                break
            with conn.transaction():
                conn.execute(
                    "UPDATE raw_jobs SET state='done' WHERE id=%s AND state='running'", row
                )
            done += 1
        return done / (time.perf_counter() - started)


# -- main ------------------------------------------------------------------------------------


def bench_sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", poll_seconds=0.05)
        if args.choices:
            return bench_choices(settings, args)
        if args.tenants:
            return bench_tenants(settings, args)
        print(f"# filling {args.orders} orders on SQLite in {tmp}", file=sys.stderr)
        tenant = fill(settings, args.orders)
        best = 0.0
        for processes in args.workers:
            completed, elapsed, transitions = run_workers(settings, processes, args.concurrency)
            rate = completed / elapsed
            best = max(best, rate)
            print(f"workers={processes} steps_per_s={rate:.0f} steps={completed}")
            print(f"p50_transition_ms={pct(transitions, 0.5):.2f}")
            print(f"p99_transition_ms={pct(transitions, 0.99):.2f}")
            fill_more = processes != args.workers[-1]
            if fill_more:
                fill(settings, args.orders)
        wakeups = asyncio.run(measure_wakeups(settings, tenant, args.wakeups))
        print(f"wakeup_p50_ms={pct(wakeups, 0.5):.1f}")
        print(f"wakeup_p99_ms={pct(wakeups, 0.99):.1f}")
        raw = raw_sqlite(Path(tmp) / "raw.db", args.orders * 3)
        print(f"raw_sqlite_jobs_per_s={raw:.0f}")
        print(f"ratio_to_raw={best / raw:.2f}")


def bench_tenants(settings: Settings, args: argparse.Namespace) -> None:
    """Steps per second with one tenant's backlog, then two tenants', same run; then one
    order of a second tenant behind a first tenant's backlog."""
    print(f"# filling {args.orders} orders of one tenant", file=sys.stderr)
    fill(settings, args.orders, tenant_name="solo")
    completed, elapsed, _ = run_workers(settings, 1, args.concurrency)
    print(f"steps_per_s={completed / elapsed:.0f}")
    print(f"# filling {args.orders // 2} orders of each of two tenants", file=sys.stderr)
    fill(settings, args.orders // 2, tenant_name="pair-a")
    fill(settings, args.orders - args.orders // 2, tenant_name="pair-b")
    completed, elapsed, _ = run_workers(settings, 1, args.concurrency)
    print(f"steps_per_s_two_tenants={completed / elapsed:.0f}")
    start_ms, done_ms = asyncio.run(measure_fair_start(settings, args.orders))
    print(f"fair_start_ms={start_ms:.1f}")
    print(f"fair_done_ms={done_ms:.1f}")


def bench_choices(settings: Settings, args: argparse.Namespace) -> None:
    """No-op steps per second without and with a choice between every two, same run."""
    rates = {}
    for flow in ("bench", "bench-choices"):
        print(f"# filling {args.orders} orders of flow {flow}", file=sys.stderr)
        fill(settings, args.orders, flow)
        completed, elapsed, _ = run_workers(settings, 1, args.concurrency)
        rates[flow] = completed / elapsed
    print(f"steps_per_s={rates['bench']:.0f}")
    print(f"steps_per_s_with_choices={rates['bench-choices']:.0f}")
    print(f"choice_ratio={rates['bench-choices'] / rates['bench']:.2f}")


def bench_postgres(args: argparse.Namespace) -> None:
    import psycopg

    server = os.environ.get("FABFLOW_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"fabflow_bench_{secrets.token_hex(4)}"
    admin_url = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url, poll_seconds=0.25)
            if args.tenants:
                return bench_tenants(settings, args)
            best = 0.0
            tenant = ""
            for processes in args.workers:
                print(f"# filling {args.orders} orders on PostgreSQL ({name})", file=sys.stderr)
                tenant = fill(settings, args.orders)
                completed, elapsed, transitions = run_workers(settings, processes, args.concurrency)
                rate = completed / elapsed
                best = max(best, rate) if processes >= 2 else best
                print(f"workers={processes} steps_per_s={rate:.0f} steps={completed}")
                print(f"workers={processes} p50_transition_ms={pct(transitions, 0.5):.2f}")
            wakeups = asyncio.run(measure_wakeups(settings, tenant, args.wakeups))
            print(f"wakeup_p50_ms={pct(wakeups, 0.5):.1f}")
            print(f"wakeup_p99_ms={pct(wakeups, 0.99):.1f}")
            raw = raw_pg(url, args.orders * 3)
            print(f"raw_pg_jobs_per_s={raw:.0f}")
            print(f"ratio_to_raw={best / raw:.2f}  (best with 2+ workers)")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--orders", type=int, default=5000, help="orders of 3 steps each")
    parser.add_argument("--workers", default="1", help="worker process counts, e.g. 1,2,4")
    parser.add_argument("--concurrency", type=int, default=64, help="attempts at once per worker")
    parser.add_argument(
        "--wakeups", type=int, default=100, help="single orders for wake-up latency"
    )
    parser.add_argument(
        "--with-order",
        action="store_true",
        help="the no-op step asks for the full order resource, as the REST step does",
    )
    parser.add_argument(
        "--choices", action="store_true", help="no-op steps without, then with choices between"
    )
    parser.add_argument(
        "--tenants",
        action="store_true",
        help="one tenant's backlog, then two tenants'; a second tenant's order behind a backlog",
    )
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    bench_postgres(args) if args.db == "postgres" else bench_sqlite(args)


if __name__ == "__main__":
    main()
