"""Crash safety of waits (issue 19): orders parked on callbacks survive the death of every
worker, and callbacks that arrive while no worker runs are kept.

An API node (``fabflow serve --workers 0``) and real ``fabflow worker`` processes share one
store, SQLite or PostgreSQL. A real receiver on 127.0.0.1 answers 202 to each order and keeps
its ``updateUrl``. Once every order waits, every worker is SIGKILLed; the receiver then calls
back every order over HTTP (half success, half error, some twice, at the same moment), and the
API answers 200 with no worker running. Workers restarted, every order ends as its callback
said: success continues to the next step with the callback's status and data, error takes the
error path; the receiver sees each next step once per order, and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fabflow.settings import Settings
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.e2e.support.orders import ENDED, Placed, order_of, place_orders, states, wait_until
from tests.e2e.support.servers import RecordingHttp
from tests.e2e.support.workers import FABFLOW, WorkerProcess, tail, worker_env
from tests.integration.steps.step_servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

ORDERS = 20
WORKERS = 2
TWICE = 4  # orders whose callback is sent twice at once (half of them success, half error)


def mes_flow(url: str) -> list[dict[str, Any]]:
    """Wait for the MES's callback; then book it (success) or report the error."""
    return [
        {
            "stepDefinitionId": "mes",
            "type": "consume-rest-api",
            "successStatus": "Accepted by MES",
            "options": {"uri": f"{url}/mes", "waitForCallback": True},
            "onSuccess": "done",
            "onError": "error",
        },
        {
            "stepDefinitionId": "done",
            "type": "consume-rest-api",
            "successStatus": "Booked",
            "options": {"uri": f"{url}/done"},
        },
        {
            "stepDefinitionId": "error",
            "type": "consume-rest-api",
            "successStatus": "Failed",
            "options": {"uri": f"{url}/error"},
        },
    ]


def callback_body(n: int) -> dict[str, Any]:
    """What the MES says about the ``n``-th order: even ones printed, odd ones jammed."""
    if n % 2 == 0:
        return {"outcome": "success", "status": f"Printed {n}", "data": {"jobId": f"J-{n}"}}
    return {"outcome": "error", "message": f"printer {n} jammed"}


@dataclass(frozen=True)
class Database:
    """Where the API node and the workers keep their state: ``settings`` of the store."""

    name: str
    settings: dict[str, str]  # FABFLOW_* without the prefix, for the processes

    def open(self) -> Store:
        if "database_url" in self.settings:
            return Store.open(Settings(database_url=self.settings["database_url"]))
        return Store.open(Settings(data_dir=Path(self.settings["data_dir"])))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """SQLite in a temporary folder, or a fresh PostgreSQL database (``pg_url``: skipped
    where none runs, failed instead where FABFLOW_REQUIRE_POSTGRES=1)."""
    if request.param == "postgres":
        return Database("postgres", {"database_url": request.getfixturevalue("pg_url")})
    return Database("sqlite", {"data_dir": str(tmp_path / "data")})


@pytest.fixture
def receiver() -> Iterator[RecordingHttp]:
    http = RecordingHttp(answer=202).start()
    try:
        yield http
    finally:
        http.stop()


@dataclass
class ApiNode:
    """``fabflow serve --workers 0``: the API alone; callbacks go to ``base``."""

    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], port: int, log_path: Path) -> ApiNode:
        command = [str(FABFLOW), "serve", "--workers", "0", "--port", str(port)]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        node = cls(f"http://127.0.0.1:{port}", proc, log_path)
        node.wait_healthy()
        return node

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"fabflow serve exited:\n{self.log()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/api/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"fabflow serve not healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def call_back(base: str, sends: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST every (updateUrl path, body) at once, with no API key, as receivers would."""
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in sends))


def test_callbacks_while_every_worker_is_dead_are_kept_and_applied_once(
    tmp_path: Path, database: Database, receiver: RecordingHttp
) -> None:
    store = database.open()
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "mes", mes_flow(receiver.url), "MES")
    port = free_port()
    env = worker_env(
        **database.settings,
        public_url=f"http://127.0.0.1:{port}",
        outbound_allow="127.0.0.1",
        poll_seconds="0.05",
        shutdown_grace_seconds="5",
    )
    api = ApiNode.start(env, port, tmp_path / "serve.log")
    fleet: list[WorkerProcess] = []

    def spawn(generation: str) -> None:
        """Start a generation of workers and wait for each to run: a worker killed or asked
        to drain while it still imports is not the worker this test means."""
        started = [
            WorkerProcess.spawn(env, tmp_path / f"worker-{generation}-{n}.log")
            for n in range(WORKERS)
        ]
        fleet.extend(started)
        for w in started:
            w.wait_running()

    try:
        spawn("first")
        placed = place_orders(store, tenant, "mes", ORDERS, prefix="WAIT")
        wait_until(lambda: states(store, tenant) == {"waiting": ORDERS}, 30, "every order waits")
        for w in fleet:
            w.kill()
        assert states(store, tenant) == {"waiting": ORDERS}
        parked_hits = len(receiver.snapshot())

        answers = asyncio.run(call_back(api.base, callbacks(receiver, placed)))
        bad = [(a.request.url.path, a.status_code, a.text) for a in answers if a.status_code != 200]
        assert not bad, f"callbacks refused with no worker running: {bad[:3]}\n{api.log()}"
        assert {a.json()["orderId"] for a in answers} == {p.order_id for p in placed}
        assert {a.json()["state"] for a in answers} == {"running"}  # its next step is queued
        assert len(receiver.snapshot()) == parked_hits, "a step ran with no worker running"
        assert states(store, tenant) == {"running": ORDERS}, "a callback was lost or not kept"

        started = time.monotonic()
        spawn("second")
        wait_until(
            lambda: sum(states(store, tenant)[s] for s in ENDED) == ORDERS, 30, "every order ended"
        )
        took = time.monotonic() - started
        again = asyncio.run(call_back(api.base, callbacks(receiver, placed[:TWICE], once=True)))
        assert [a.status_code for a in again] == [200] * TWICE, [a.text for a in again]
        codes = [w.drain() for w in fleet[WORKERS:]]
    finally:
        for w in fleet:
            w.kill()
        api.stop()
    print(f"\n{database.name}: {ORDERS} orders called back while no worker ran, ended {took:.2f} s")
    assert codes == [0] * WORKERS, tail(fleet)
    try:
        check_each_order_ended_as_called_back(store, tenant, placed, receiver)
    finally:
        store.close()


def callbacks(
    receiver: RecordingHttp, placed: list[Placed], once: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Each order's callback, read from the updateUrl the receiver got; the first ``TWICE``
    orders' twice in a row (sent together) unless ``once``."""
    urls = {h.order_id: h.update_url for h in receiver.snapshot() if h.path == "/mes"}
    sends = []
    for n, p in enumerate(placed):
        url = urls[p.order_id]
        assert url is not None and url.startswith("http://127.0.0.1:"), url
        path = httpx.URL(url).path
        sends += [(path, callback_body(n))] * (1 if once or n >= TWICE else 2)
    return sends


def check_each_order_ended_as_called_back(
    store: Store, tenant: str, placed: list[Placed], receiver: RecordingHttp
) -> None:
    hits = receiver.snapshot()
    expected: Counter[tuple[str, str | None]] = Counter()
    for n, p in enumerate(placed):
        success = n % 2 == 0
        expected[("/mes", p.key(1))] = 1
        expected[("/done" if success else "/error", p.key(2))] = 1
    assert Counter((h.path, h.key) for h in hits) == expected, "a step was lost or run twice"
    sent_data = {h.order_id: h.step_data for h in hits if h.path == "/done"}
    assert states(store, tenant) == {"succeeded": ORDERS // 2, "failed": ORDERS // 2}
    for n, p in enumerate(placed):
        order = order_of(store, tenant, p.order_id)
        kinds = [e["kind"] for e in orders.order_events(store, tenant, p.order_id)]
        assert kinds.count("step_waiting") == 1, kinds
        if n % 2 == 0:
            check_succeeded(order, n, sent_data[p.order_id])
        else:
            check_failed(order, n)


def check_succeeded(order: dict[str, Any], n: int, sent_step_data: Any) -> None:
    assert order["execution"]["state"] == "succeeded"
    assert [h["status"] for h in order["statusHistory"]] == [f"Printed {n}", "Booked"]
    assert order["stepData"] == {"mes": {"jobId": f"J-{n}"}}
    assert sent_step_data == {"mes": {"jobId": f"J-{n}"}}, "the next step did not get the data"
    outcomes = [(a["stepDefinitionId"], a["outcome"]) for a in order["execution"]["attempts"]]
    assert outcomes == [("mes", "success"), ("done", "success")]


def check_failed(order: dict[str, Any], n: int) -> None:
    assert order["execution"]["state"] == "failed"
    assert order["status"] == "Failed"
    assert order["execution"]["lastError"] == {
        "stepDefinitionId": "mes",
        "type": "callback",
        "message": f"printer {n} jammed",
    }
    outcomes = [(a["stepDefinitionId"], a["outcome"]) for a in order["execution"]["attempts"]]
    assert outcomes == [("mes", "error"), ("error", "success")]
