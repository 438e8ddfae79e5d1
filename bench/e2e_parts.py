"""The parts of ``bench.e2e``'s flow measured alone: the bound the whole flow is compared with.

Each part runs by itself, in the same run as the whole flow, on the same orders:

- generation: every order line through ``run_line`` (build, checks, STL, preview) in a warm
  pool of one process per core, as the production step runs it, with nothing else running;
- the REST and the email steps: one worker on a store of one-step orders (``bench.steps``'s
  ``engine_rate``, steady state), against the same receivers;
- intake: the same orders posted to ``fabflow serve --workers 0`` (no worker takes them), from
  the same number of clients.

The flow can go no faster than its slowest part: ``bound = min(parts)``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.api import api_key, cpu_seconds, free_port, wait_ready
from bench.steps import engine_rate
from bench.wait import post_all
from fabflow.production.build import LineJob, run_line, warm_up
from fabflow.production.pool import WarmPool
from fabflow.production.registry import get, import_path
from fabflow.settings import Settings


@dataclass(frozen=True)
class Parts:
    """Each part's rate alone, in orders (or steps) per second."""

    generation: float
    rest: float
    email: float
    intake: float
    gen_cpu_ms: float  # CPU milliseconds per order of the generation alone

    @property
    def bound(self) -> float:
        return min(self.generation, self.rest, self.email, self.intake)

    @property
    def slowest(self) -> str:
        rates = {"generation": self.generation, "rest": self.rest, "email": self.email}
        return min({**rates, "intake": self.intake}.items(), key=lambda kv: kv[1])[0]


async def generation_rate(bodies: list[dict[str, Any]], processes: int) -> tuple[float, float]:
    """Orders per second through ``run_line`` on ``processes`` warm processes, with the mean
    CPU milliseconds per order those processes took (files written to a scratch folder)."""
    pool = WarmPool(processes)
    await pool.start(warm=warm_up)
    try:
        with tempfile.TemporaryDirectory(prefix="fabflow-e2e-gen-") as scratch:
            jobs = [_line_job(body, n, scratch) for n, body in enumerate(bodies)]
            await asyncio.gather(*(pool.run(run_line, job, timeout=60) for job in jobs[:4]))
            cpu = _pool_cpu()
            started = time.perf_counter()
            results = await asyncio.gather(*(pool.run(run_line, j, timeout=300) for j in jobs))
            elapsed = time.perf_counter() - started
            cpu = _pool_cpu() - cpu
    finally:
        await pool.close()
    failed = [r for r in results if not isinstance(r, list)]
    if failed:
        raise SystemExit(f"generation alone: {len(failed)} lines failed, first {failed[0]}")
    return len(jobs) / elapsed, cpu / len(jobs) * 1000


def _line_job(body: dict[str, Any], n: int, scratch: str) -> LineJob:
    line = body["lines"][0]
    product = import_path(get(line["product"]))
    out = Path(scratch) / str(n)
    out.mkdir()
    return LineJob(str(n), product, line["parameters"], "stl", str(out), "line")


def _pool_cpu() -> float:
    """CPU seconds of every descendant of this process (the pool's processes)."""
    return sum(cpu_seconds(pid) for pid in descendants(os.getpid()))


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, pending = [], list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


async def step_rates(settings: Settings, steps: dict[str, dict[str, Any]], n: int) -> list[float]:
    """The REST and the email step alone, each on a fresh store (``bench.steps``)."""
    rates = []
    for name, step in steps.items():
        with _fresh(settings, name) as at:
            rates.append((await engine_rate(at, step, n)).per_s)
    return rates


@contextmanager
def _fresh(settings: Settings, name: str) -> Iterator[Settings]:
    """``settings`` on a new SQLite file or a new PostgreSQL database, dropped after."""
    with tempfile.TemporaryDirectory(prefix=f"fabflow-e2e-{name}-") as tmp:
        if not settings.database_url:
            yield settings.with_(data_dir=Path(tmp))
            return
        with fresh_database(settings.database_url) as url:
            yield settings.with_(data_dir=Path(tmp), database_url=url)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``server_url``; dropped after."""
    import secrets

    import psycopg

    admin_url = server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"fabflow_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def intake_rate(
    env: dict[str, str], flow: dict[str, Any], bodies: list[dict[str, Any]], concurrency: int
) -> tuple[float, float]:
    """The same orders posted to ``fabflow serve --workers 0`` on a fresh store: orders per
    second, and the server's CPU milliseconds per order."""
    import subprocess

    from bench.api import FABFLOW

    with tempfile.TemporaryDirectory(prefix="fabflow-e2e-intake-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**env, "FABFLOW_DATA_DIR": tmp, "FABFLOW_PUBLIC_URL": base}
        with _fresh_env(env) as env:
            headers = {"Authorization": f"Bearer {api_key(env)}"}
            cmd = [FABFLOW, "serve", "--workers", "0", "--port", str(port)]
            proc = subprocess.Popen(cmd, env=env)
            try:
                await wait_ready(base, proc)
                async with aiohttp.ClientSession(base, headers=headers) as http:
                    await post_all(http, [("/api/flows", flow)], 1)
                    warm = [
                        ("/api/orders", {**b, "externalId": f"W{i}"})
                        for i, b in enumerate(bodies[:100])
                    ]
                    await post_all(http, warm, concurrency)
                    cpu, started = cpu_seconds(proc.pid), time.perf_counter()
                    await post_all(http, [("/api/orders", b) for b in bodies], concurrency)
                    elapsed = time.perf_counter() - started
                    cpu = cpu_seconds(proc.pid) - cpu
            finally:
                proc.terminate()
                proc.wait(30)
    return len(bodies) / elapsed, cpu / len(bodies) * 1000


@contextmanager
def _fresh_env(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` with a fresh PostgreSQL database when it names one."""
    if not env.get("FABFLOW_DATABASE_URL"):
        yield env
        return
    with fresh_database(env["FABFLOW_DATABASE_URL"]) as url:
        yield {**env, "FABFLOW_DATABASE_URL": url}
