"""Crash safety on the embedded store (issue 3): real ``fabflow worker`` processes sharing one
SQLite file, a real HTTP receiver on 127.0.0.1 that records every request's Idempotency-Key.

- Two workers side by side never run one attempt at the same time, and run each exactly once.
- A worker SIGKILLed in the middle of a step loses its lease; another worker takes the
  attempt over and completes the execution; the receiver saw the request at most twice, with
  the same Idempotency-Key both times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fabflow.settings import Settings
from fabflow.store import orders
from fabflow.store.repository import Store
from fabflow.store.schema import attempts
from tests.e2e.support.orders import ENDED, order_of, place_orders, states, wait_until
from tests.e2e.support.servers import Hit, RecordingHttp
from tests.e2e.support.workers import WorkerProcess, group_members, tail, worker_env

pytestmark = pytest.mark.timeout(60)


def rest_flow(url: str) -> list[dict[str, Any]]:
    return [
        {
            "stepDefinitionId": "notify-shop",
            "type": "consume-rest-api",
            "successStatus": "Shop notified",
            "options": {"uri": url},
        }
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    s = Store.open(Settings(data_dir=data_dir))
    yield s
    s.close()


def test_two_worker_processes_run_each_attempt_once_and_never_at_once(
    tmp_path: Path, data_dir: Path, store: Store
) -> None:
    receiver = RecordingHttp(delay=lambda _hit: 0.05).start()
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "notify", rest_flow(receiver.url + "/orders"), "Notify")
    env = worker_env(data_dir=str(data_dir), outbound_allow="127.0.0.1", poll_seconds="0.05")
    workers = [WorkerProcess.spawn(env, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        for w in workers:
            w.wait_running()
        # Placed while both workers poll: intake and claims compete for the write lock.
        started = time.monotonic()
        placed = place_orders(store, tenant, "notify", 100)
        wait_until(
            lambda: sum(states(store, tenant)[s] for s in ENDED) == len(placed),
            timeout=40,
            what="100 executions ended",
        )
        took = time.monotonic() - started
        codes = [w.drain() for w in workers]
    finally:
        for w in workers:
            w.kill()
        receiver.stop()
    print(f"\n100 orders placed and run by 2 workers in {took:.2f} s")
    assert codes == [0, 0], tail(workers)

    hits = receiver.snapshot()
    overlapping = [h for h in hits if h.in_flight_same_key > 1]
    assert not overlapping, f"one attempt ran twice at the same time: {overlapping[:3]}"
    assert receiver.keys() == {p.key(1): 1 for p in placed}
    assert states(store, tenant) == {"succeeded": 100}
    ran_by = {_attempts(store, tenant, p.order_id)[0]["worker"] for p in placed}
    prefixes = {w.id_prefix for w in workers}
    assert {next(p for p in prefixes if wid.startswith(p)) for wid in ran_by} == prefixes, (
        "both workers should have run attempts"
    )


def test_sigkilled_worker_mid_step_is_taken_over_with_the_same_key(
    tmp_path: Path, data_dir: Path, store: Store
) -> None:
    first_seen = threading.Event()

    def hold_the_first(hit: Hit) -> float:
        return 3.0 if hit is receiver.hits[0] else 0.0

    receiver = RecordingHttp(delay=hold_the_first, on_hit=lambda _h: first_seen.set()).start()
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "notify", rest_flow(receiver.url + "/orders"), "Notify")
    env = worker_env(
        data_dir=str(data_dir),
        outbound_allow="127.0.0.1",
        poll_seconds="0.05",
        lease_seconds="2",
    )
    first = WorkerProcess.spawn(env, tmp_path / "first.log")
    second: WorkerProcess | None = None
    try:
        first.wait_running()
        (placed,) = place_orders(store, tenant, "notify", 1)
        assert first_seen.wait(20), tail([first])
        first.kill()  # the request is in flight: the step's side effect may have happened
        killed_at = time.monotonic()
        assert states(store, tenant) == {"running": 1}

        second = WorkerProcess.spawn(env, tmp_path / "second.log")
        took = wait_until(
            lambda: states(store, tenant)["succeeded"] == 1, timeout=20, what="taken over"
        )
        recovered_in = time.monotonic() - killed_at
        assert second.drain() == 0, tail([second])
    finally:
        for w in (first, second):
            if w is not None:
                w.kill()
        receiver.stop()
    print(f"\nkilled mid-step, recovered by another worker {recovered_in:.2f} s later ({took:.2f})")

    hits = receiver.snapshot()
    assert [h.key for h in hits] == [placed.key(1)] * 2, "sent again, with the same key"
    order = order_of(store, tenant, placed.order_id)
    assert order["execution"]["state"] == "succeeded"
    assert order["status"] == "Shop notified"
    (attempt,) = order["execution"]["attempts"]  # one attempt, run twice: not a retry
    assert attempt["outcome"] == "success"
    assert attempt["attempt"] == 1
    assert attempt["worker"].startswith(second.id_prefix)
    assert _claims(store, attempt["id"]) == 2 == attempt["claims"]
    assert "taking over attempt" in second.log()
    events = orders.order_events(store, tenant, placed.order_id)
    kinds = [e["kind"] for e in events]
    assert kinds.count("step_succeeded") == 1, kinds
    (takeover,) = [e["data"] for e in events if e["kind"] == "attempt_taken_over"]
    assert takeover["previousWorker"].startswith(first.id_prefix)
    assert takeover["worker"].startswith(second.id_prefix)


def test_a_sigkilled_worker_leaves_no_process_running(
    tmp_path: Path, data_dir: Path, store: Store
) -> None:
    tenant = store.ensure_tenant("acme")
    generate = {
        "stepDefinitionId": "generate",
        "type": "generate-production-files",
        "successStatus": "Files ready",
        "options": {"fileFormat": "stl"},
    }
    store.save_flow(tenant, "make", [generate], "Make")
    env = worker_env(data_dir=str(data_dir), poll_seconds="0.05")
    worker = WorkerProcess.spawn(env, tmp_path / "worker.log")
    try:
        worker.wait_running()
        line = {"id": "1", "product": "nameplate", "quantity": 1, "parameters": {"text": "Ada"}}
        order = {"customer": {"name": "Ada"}, "lines": [line]}
        orders.create_order(store, tenant, order, "make")
        wait_until(lambda: states(store, tenant)["succeeded"] == 1, 30, "files generated")
        worker.proc.kill()  # the worker alone, as the OOM killer would
        worker.proc.wait(10)
        deadline = time.monotonic() + 5
        while group_members(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = group_members(worker.pid)
    finally:
        worker.kill()  # sweeps the process group
    assert left == [], f"{len(left)} processes of the killed worker still run"


def _attempts(store: Store, tenant: str, order_id: str) -> list[dict[str, Any]]:
    return list(order_of(store, tenant, order_id)["execution"]["attempts"])


def _claims(store: Store, attempt_id: int) -> int:
    with store.read() as conn:
        return int(
            conn.execute(select(attempts.c.claims).where(attempts.c.id == attempt_id)).scalar_one()
        )
