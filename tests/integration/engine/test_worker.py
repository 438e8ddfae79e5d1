"""The worker on a real store (SQLite and PostgreSQL): flows run to their end, retries,
error paths, timeouts, leases and operators' actions."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, select

from fabflow.engine.worker import Worker
from fabflow.errors import Conflict
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import Decision
from fabflow.settings import Settings
from fabflow.store import orders, queue
from fabflow.store.repository import Store
from fabflow.store.schema import attempts, executions
from tests.support import executors as test_steps
from tests.support.clock import FakeClock
from tests.support.queues import FlakyQueue


@pytest.fixture(autouse=True)
def _script_steps() -> Iterator[None]:
    with test_steps.installed():
        yield


def step(sid: str, status: str, **kw: Any) -> dict[str, Any]:
    options = kw.pop("options", {})
    return {
        "stepDefinitionId": sid,
        "type": "test-script",
        "successStatus": status,
        "options": options,
        **kw,
    }


def setup_flow(store: Store, steps: list[dict[str, Any]]) -> str:
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", steps, "F")
    return tenant


def new_order(store: Store, tenant: str) -> str:
    resource, _ = orders.create_order(
        store, tenant, {"customer": {"name": "Ada"}, "lines": []}, "f"
    )
    return str(resource["id"])


async def run_until_ended(store: Store, tenant: str, order_id: str, **kw: Any) -> dict[str, Any]:
    worker = Worker(store, {"test-script": test_steps.ScriptStep(store.settings)}, **kw)

    def ended() -> bool:
        state = orders.get_order(store, tenant, order_id)["execution"]["state"]
        return state in ("succeeded", "failed", "cancelled")

    await asyncio.wait_for(worker.run(until=ended), 30)
    return orders.get_order(store, tenant, order_id)


async def test_success_chain_sets_each_status(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "A done", onSuccess="b"), step("b", "B done")])
    order = await run_until_ended(store, tenant, new_order(store, tenant))
    assert order["execution"]["state"] == "succeeded"
    assert [h["status"] for h in order["statusHistory"]] == ["A done", "B done"]
    assert order["status"] == "B done"
    assert [a["outcome"] for a in order["execution"]["attempts"]] == ["success", "success"]


async def test_transient_errors_are_retried_then_succeed(store: Store) -> None:
    flaky = step(
        "a", "ok", options={"failAttempts": 2}, retry={"maxAttempts": 3, "initialDelay": 10}
    )
    tenant = setup_flow(store, [flaky])
    order = await run_until_ended(store, tenant, new_order(store, tenant))
    attempts = order["execution"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["error", "error", "success"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert order["execution"]["state"] == "succeeded"


async def test_error_path_sees_the_error_and_the_execution_fails(store: Store) -> None:
    test_steps.CALLS.clear()
    tenant = setup_flow(
        store,
        [step("a", "never", options={"permanent": True}, onError="error"), step("error", "Failed")],
    )
    order = await run_until_ended(store, tenant, new_order(store, tenant))
    assert order["status"] == "Failed"
    assert order["execution"]["state"] == "failed"
    handler_call = next(c for c in test_steps.CALLS if c["step"] == "error")
    assert handler_call["error"] == {
        "stepDefinitionId": "a",
        "type": "scripted",
        "message": "told to fail",
    }
    first = order["execution"]["attempts"][0]
    assert first["error"] == {"type": "scripted", "message": "told to fail"}


async def test_a_step_that_ignores_cancellation_is_cut_off_at_its_timeout(store: Store) -> None:
    stubborn = step(
        "a",
        "never",
        options={"sleep": 3, "ignoreCancel": True},
        timeout=300,
        retry={"maxAttempts": 1},
    )
    tenant = setup_flow(store, [stubborn])
    started = time.monotonic()
    order = await run_until_ended(store, tenant, new_order(store, tenant))
    elapsed = time.monotonic() - started
    attempt = order["execution"]["attempts"][0]
    assert attempt["outcome"] == "timeout"
    assert attempt["error"]["type"] == "timeout"
    assert order["execution"]["state"] == "failed"
    assert elapsed < 2, f"the timeout of 300 ms took {elapsed:.1f} s to act"


async def test_a_worker_that_lost_its_lease_cannot_complete(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "done")])
    order_id = new_order(store, tenant)
    now = time.time()
    with store.write() as conn:
        (first,) = queue.claim(conn, "worker-a", 1, now, lease_s=0.01)
    # The lease expires; another worker takes the attempt over and finishes the flow.
    await asyncio.sleep(0.05)
    order = await run_until_ended(store, tenant, order_id)
    assert order["execution"]["state"] == "succeeded"
    attempt = order["execution"]["attempts"][0]
    assert attempt["worker"] != "worker-a"
    # Worker A comes back with its stale fencing token: refused, nothing written.
    decision = Decision(
        AttemptState.ERROR, "hijacked", None, ExecutionState.FAILED, True, "step_failed"
    )
    with store.write() as conn:
        stale = queue.Transition(first, order_id, decision, queue.AttemptRecord(1.0))
        assert queue.apply(conn, [stale], time.time()) == [False]
    after = orders.get_order(store, tenant, order_id)
    assert after["status"] == "done" and after["execution"]["state"] == "succeeded"


async def test_a_batch_records_the_transitions_that_hold_their_lease_and_only_those(
    store: Store,
) -> None:
    tenant = setup_flow(store, [step("a", "done")])
    kept, cancelled, taken = (new_order(store, tenant) for _ in range(3))
    with store.write() as conn:
        claims = queue.claim(conn, "worker-a", 3, time.time(), lease_s=60)
    by_order = dict(zip((kept, cancelled, taken), claims, strict=True))
    orders.cancel(store, tenant, cancelled)  # an operator cancels one while it runs
    with store.write() as conn:  # another worker takes one over (its fencing token moves on)
        conn.execute(
            attempts.update()
            .where(attempts.c.id == by_order[taken].attempt_id)
            .values(lease_version=attempts.c.lease_version + 1)
        )
    decision = Decision(
        AttemptState.SUCCESS, "done", None, ExecutionState.SUCCEEDED, False, "step_succeeded"
    )
    batch = [
        queue.Transition(by_order[o], o, decision, queue.AttemptRecord(1.0))
        for o in (kept, cancelled, taken)
    ]
    with store.write() as conn:
        assert queue.apply(conn, batch, time.time()) == [True, False, False]
    won = orders.get_order(store, tenant, kept)
    assert won["status"] == "done" and won["execution"]["state"] == "succeeded"
    assert [h["status"] for h in won["statusHistory"]] == ["done"]
    assert won["execution"]["attempts"][0]["outcome"] == "success"
    lost = orders.get_order(store, tenant, cancelled)
    assert lost["execution"]["state"] == "cancelled" and lost["statusHistory"] == []
    assert lost["execution"]["attempts"][0]["outcome"] == "cancelled"
    other = orders.get_order(store, tenant, taken)
    assert other["statusHistory"] == [] and other["execution"]["state"] == "running"
    assert other["execution"]["attempts"][0]["outcome"] == "running"
    kinds = [e["kind"] for o in (cancelled, taken) for e in orders.order_events(store, tenant, o)]
    assert "step_succeeded" not in kinds


async def test_cancel_a_running_execution(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "never", options={"sleep": 10})])
    order_id = new_order(store, tenant)
    worker = Worker(store, {"test-script": test_steps.ScriptStep(store.settings)})
    task = asyncio.create_task(worker.run())
    await _wait_until_started()
    cancelled = orders.cancel(store, tenant, order_id)
    assert cancelled["execution"]["state"] == "cancelled"
    assert cancelled["execution"]["attempts"][0]["outcome"] == "cancelled"
    worker.stop()
    await asyncio.wait_for(task, 10)
    final = orders.get_order(store, tenant, order_id)
    assert final["execution"]["state"] == "cancelled" and final["status"] == "Created"
    with pytest.raises(Conflict):
        orders.cancel(store, tenant, order_id)


async def test_retry_after_a_fix_reruns_the_failed_step_with_a_new_key(store: Store) -> None:
    test_steps.CALLS.clear()
    test_steps.BROKEN["erp"] = True
    broken = step("b", "B", options={"brokenWhile": "erp"}, onError="error")
    tenant = setup_flow(store, [step("a", "A", onSuccess="b"), broken, step("error", "Failed")])
    order_id = new_order(store, tenant)
    failed = await run_until_ended(store, tenant, order_id)
    assert failed["execution"]["state"] == "failed" and failed["status"] == "Failed"
    with pytest.raises(Conflict):  # an ended execution cannot be cancelled
        orders.cancel(store, tenant, order_id)
    test_steps.BROKEN["erp"] = False  # the operator fixes the endpoint
    orders.retry(store, tenant, order_id)
    done = await run_until_ended(store, tenant, order_id)
    assert done["execution"]["state"] == "succeeded"
    assert done["status"] == "B"
    steps = [a["stepDefinitionId"] for a in done["execution"]["attempts"]]
    assert steps == ["a", "b", "error", "b"]  # the whole history is kept
    keys = [c["key"] for c in test_steps.CALLS if c["step"] == "b"]
    assert len(keys) == 2 and keys[0] != keys[1]  # a retry is a new visit: a new key
    assert [h["status"] for h in done["statusHistory"]] == ["A", "Failed", "B"]


async def test_rerun_from_a_step(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "A", onSuccess="b"), step("b", "B")])
    order_id = new_order(store, tenant)
    await run_until_ended(store, tenant, order_id)
    with pytest.raises(Exception, match="no step"):
        orders.rerun(store, tenant, order_id, "nope")
    orders.rerun(store, tenant, order_id, "b")
    done = await run_until_ended(store, tenant, order_id)
    assert [a["stepDefinitionId"] for a in done["execution"]["attempts"]] == ["a", "b", "b"]
    assert [h["status"] for h in done["statusHistory"]] == ["A", "B", "B"]
    kinds = [e["kind"] for e in orders.order_events(store, tenant, order_id)]
    assert "rerun" in kinds and kinds[0] == "order_created"


async def test_sigterm_style_stop_lets_running_attempts_finish(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "done", options={"sleep": 0.5})])
    order_id = new_order(store, tenant)
    worker = Worker(store, {"test-script": test_steps.ScriptStep(store.settings)})
    task = asyncio.create_task(worker.run())
    await _wait_until_started()
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert orders.get_order(store, tenant, order_id)["execution"]["state"] == "succeeded"


async def test_grace_period_over_releases_the_attempt(store: Store) -> None:
    tenant = setup_flow(store, [step("a", "done", options={"sleep": 30})])
    order_id = new_order(store, tenant)
    settings = store.settings.with_(shutdown_grace_seconds=0.2)
    worker = Worker(store, {"test-script": test_steps.ScriptStep(settings)}, settings=settings)
    task = asyncio.create_task(worker.run())
    await _wait_until_started()
    worker.stop()
    await asyncio.wait_for(task, 10)
    attempt = orders.get_order(store, tenant, order_id)["execution"]["attempts"][0]
    assert attempt["outcome"] == "queued"  # back in the queue for another worker


async def test_a_slot_waits_for_the_commit_of_its_last_attempt(store: Store) -> None:
    """The next attempt is claimed ahead, but starts only once the one before it in the slot
    is recorded: a worker that dies (or loses its database) then leaves at most one
    unrecorded side effect per slot, never a finished one plus the next."""
    tenant, first, second, worker, queue_, clock = _two_orders_one_slot(store, sleep=0.05)
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: len(test_steps.CALLS) == 1 and len(worker._ready) == 1)
    assert _outcomes(store, tenant, first, second) == ["running", "running"]  # claimed ahead
    queue_.down = True  # the first step's commit cannot happen
    await _wait_for(lambda: worker.attempts.unrecorded == 1)  # it ended; its slot is held
    assert len(test_steps.CALLS) == 1, "the next attempt started before the commit"
    assert _outcomes(store, tenant, first, second) == ["running", "running"]
    queue_.down = False
    await clock.advance(0.2)  # the cycle's next try
    await _wait_for(lambda: _outcomes(store, tenant, first, second) == ["success"] * 2)
    await _stopped(worker, task, clock)
    assert len(test_steps.CALLS) == 2


async def test_the_event_loop_runs_on_while_another_writer_holds_the_lock(store: Store) -> None:
    """On SQLite the worker's transactions run on its event loop; one that finds the write
    lock held (the API or another worker is writing) must not wait there, or every step in
    flight, timer and heartbeat would stop with it. It waits on the queue's thread instead,
    and the attempt is recorded once the lock is free."""
    tenant, first, second, worker, _, clock = _two_orders_one_slot(store, sleep=0.05)
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: len(test_steps.CALLS) == 1)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    ticker = asyncio.create_task(tick())
    with _database_locked(store):
        await _wait_for(lambda: worker.attempts.unrecorded == 1)  # its commit needs the lock
        await asyncio.sleep(0.3)  # the loop ticks on meanwhile
        assert _outcomes(store, tenant, first, second) == ["running", "running"]
    ticker.cancel()
    assert max(gaps) < 0.2, f"the event loop stood still for {max(gaps):.2f} s"
    await _wait_for(lambda: _outcomes(store, tenant, first, second) == ["success"] * 2)
    await _stopped(worker, task, clock)


async def test_an_attempt_claimed_ahead_is_not_started_once_its_lease_is_in_doubt(
    store: Store,
) -> None:
    """The database is out of reach for longer than two heartbeat intervals, and meanwhile
    another worker takes over what this one held: the attempt this one had claimed ahead is
    not started when the database comes back (its lease may be gone); the next heartbeat
    drops it."""
    tenant, first, second, worker, queue_, clock = _two_orders_one_slot(store)
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: len(test_steps.CALLS) == 1 and len(worker._ready) == 1)
    queue_.down = True
    await _wait_for(lambda: worker.attempts.unrecorded == 1)
    await clock.advance(1.2)  # two heartbeat intervals of a 1.5 s lease, none renewed
    with store.write() as conn:
        _taken_over_by_another_worker(conn)
    queue_.down = False
    await clock.advance(0.2)  # the cycle's next try: the first attempt's commit is refused
    await _wait_for(lambda: worker.stats.lost == 1)
    assert len(worker._ready) == 1, "the claim in doubt was started or dropped early"
    beats = worker.stats.heartbeats
    await clock.advance(0.5)  # the next heartbeat finds its lease lost
    await _wait_for(lambda: worker.stats.heartbeats > beats and not worker._ready)
    await _stopped(worker, task, clock)
    assert [c["key"] for c in test_steps.CALLS] == [test_steps.CALLS[0]["key"]]
    assert worker.stats.lost == 1 and worker.stats.completed == 0
    held = [_attempts(store, tenant, o)[0]["worker"] for o in (first, second)]
    assert held == ["worker-b", "worker-b"]


async def test_a_claim_whose_orders_were_read_through_an_outage_waits_for_its_own_renewal(
    store: Store,
) -> None:
    """The claims commit, then reading their orders fails for longer than two heartbeat
    intervals, while heartbeats carry on without those claims (not held yet); meanwhile
    another worker takes them over. Heartbeats that renewed other leases must not vouch for
    these: nothing starts."""
    tenant, first, second, worker, queue_, clock = _two_orders_one_slot(store)
    queue_.load_down = True
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: queue_.load_failures >= 1)
    await clock.advance(1.3)
    await _wait_for(lambda: worker.stats.heartbeats >= 1)  # the heartbeats went on
    with store.write() as conn:
        _taken_over_by_another_worker(conn)
    queue_.load_down = False
    await clock.advance(0.6)  # the read's next try: their claims' leases are in doubt now
    await _wait_for(lambda: worker.stats.claimed == 2)
    beats = worker.stats.heartbeats
    await clock.advance(0.5)  # the next heartbeat finds them lost
    await _wait_for(lambda: worker.stats.heartbeats > beats and not worker._ready)
    await _stopped(worker, task, clock)
    assert test_steps.CALLS == [], "a claim taken over meanwhile was started"
    held = [_attempts(store, tenant, o)[0]["worker"] for o in (first, second)]
    assert held == ["worker-b", "worker-b"]


async def test_a_running_attempt_is_stopped_when_its_lease_runs_out_unrenewed(
    store: Store,
) -> None:
    """The database is out of reach for longer than a lease while a long step runs. Once the
    lease is out another worker may take the attempt over and run it again, so this worker
    stops its own run first: the two never run at once. When the database answers again, the
    attempt goes back to the queue at once, not a lease later."""
    tenant = setup_flow(store, [step("a", "done", options={"sleep": 30})])
    order_id = new_order(store, tenant)
    settings = store.settings.with_(lease_seconds=3.0, shutdown_grace_seconds=0.2)
    test_steps.CALLS.clear()
    worker, queue_, clock = _one_slot_worker(store, settings)
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: len(test_steps.CALLS) == 1)
    first = test_steps.CALLS[0]
    lease_until = _lease_until(store, order_id)  # what another worker goes by
    queue_.down = True  # no heartbeat can renew the lease from now on
    while "cancelled_at" not in first and clock.now < lease_until:
        await clock.advance(0.05)
        await asyncio.sleep(0)
    stopped_at = clock.now
    await _wait_for(lambda: "cancelled_at" in first)
    assert not worker.running
    early = lease_until - stopped_at
    assert 0 < early <= 0.35, f"stopped {early:.2f} s before the lease ran out"
    queue_.down = False
    back = clock.now
    while len(test_steps.CALLS) < 2 and clock.now - back < 3.0:
        await clock.advance(0.05)
        await asyncio.sleep(0.001)
    await _wait_for(lambda: len(test_steps.CALLS) == 2)
    rerun_after = clock.now - back
    assert rerun_after < 2.2, f"ran again {rerun_after:.2f} s after the database came back"
    assert test_steps.CALLS[1]["key"] == first["key"]  # the same attempt, the same key
    await _stopped(worker, task, clock)


async def test_an_attempt_a_worker_takes_over_from_itself_stops_its_first_run(
    store: Store,
) -> None:
    """A worker whose loop stalled past a lease may take its own running attempt over (the
    lease looks expired to it as to anyone). The new claim holds the attempt: the first run
    stops, and the attempt does not run twice at once in one worker."""
    tenant = setup_flow(store, [step("a", "done", options={"sleep": 30})])
    new_order(store, tenant)
    settings = store.settings.with_(shutdown_grace_seconds=0.2)
    test_steps.CALLS.clear()
    worker, _, clock = _one_slot_worker(store, settings)
    task = asyncio.create_task(worker.run())
    await _wait_for(lambda: len(test_steps.CALLS) == 1)
    (first,) = worker.running.values()
    with store.write() as conn:  # the takeover, as the worker's cycle makes it once expired
        (again,) = queue.claim(conn, worker.id, 1, time.time() + 60, lease_s=60)
    worker.attempts.start(dataclasses.replace(first.work, claim=again), time.time())
    await _wait_for(lambda: len(test_steps.CALLS) == 2)
    await _wait_for(lambda: "cancelled_at" in test_steps.CALLS[0])  # the first run stopped
    (running,) = worker.running.values()
    assert running.work.claim.lease_version == again.lease_version
    assert again.lease_version > first.work.claim.lease_version
    await _stopped(worker, task, clock)


def _two_orders_one_slot(
    store: Store, sleep: float = 0.1
) -> tuple[str, str, str, Worker, FlakyQueue, FakeClock]:
    """Two orders of a one-step flow, and a worker of one slot with a 1.5 s lease on a clock
    the test moves, over a queue the test can cut off."""
    tenant = setup_flow(store, [step("a", "done", options={"sleep": sleep})])
    first, second = new_order(store, tenant), new_order(store, tenant)
    settings = store.settings.with_(lease_seconds=1.5)
    test_steps.CALLS.clear()
    worker, queue_, clock = _one_slot_worker(store, settings)
    return tenant, first, second, worker, queue_, clock


def _one_slot_worker(store: Store, settings: Settings) -> tuple[Worker, FlakyQueue, FakeClock]:
    """A worker of one slot running test-script steps with ``settings``."""
    queue_, clock = FlakyQueue(store, settings.lease_seconds), FakeClock()
    worker = Worker(
        store,
        {"test-script": test_steps.ScriptStep(settings)},
        settings=settings,
        concurrency=1,
        clock=clock,
        queue=queue_,
    )
    return worker, queue_, clock


def _taken_over_by_another_worker(conn: Connection) -> None:
    """``worker-b`` takes both attempts over, as it would once their leases look expired."""
    assert len(queue.claim(conn, "worker-b", 10, time.time() + 10, lease_s=60)) == 2


def _lease_until(store: Store, order_id: str) -> float:
    """The lease of the order's one running attempt, as the database holds it."""
    query = (
        select(attempts.c.lease_until)
        .join(executions, executions.c.id == attempts.c.execution_id)
        .where(executions.c.order_id == order_id, attempts.c.state == "running")
    )
    with store.read() as conn:
        return float(conn.execute(query).scalar_one())


def _attempts(store: Store, tenant: str, order_id: str) -> list[dict[str, Any]]:
    return list(orders.get_order(store, tenant, order_id)["execution"]["attempts"])


def _outcomes(store: Store, tenant: str, *order_ids: str) -> list[str]:
    return [_attempts(store, tenant, o)[0]["outcome"] for o in order_ids]


@contextmanager
def _database_locked(
    store: Store, then: Callable[[Connection], None] | None = None
) -> Iterator[None]:
    """Hold the write lock on the attempts from another connection for the block (writers
    wait, readers do not); ``then`` runs in that transaction before it commits."""
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            with store.write() as conn:  # SQLite: BEGIN IMMEDIATE holds the write lock
                if not store.is_sqlite:
                    conn.exec_driver_sql("LOCK TABLE attempts IN EXCLUSIVE MODE")
                locked.set()
                release.wait(30)
                if then is not None:
                    then(conn)
        except BaseException as exc:
            failure.append(exc)
            locked.set()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)
    if failure:
        raise failure[0]


async def _wait_until_started() -> None:
    """Until a step runs (the execution is "running" from its claim, a moment earlier)."""
    test_steps.CALLS.clear()
    await _wait_for(lambda: bool(test_steps.CALLS))


async def _stopped(worker: Worker, task: asyncio.Task[None], clock: FakeClock) -> None:
    """Stop the worker, moving its clock on through its grace period until it has ended."""
    worker.stop()
    deadline = time.monotonic() + 10
    while not task.done():
        assert time.monotonic() < deadline, "the worker did not stop"
        await clock.advance(0.05)
        await asyncio.sleep(0.005)
    await task


async def _wait_for(cond: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)
