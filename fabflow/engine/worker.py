"""The worker: claims runnable attempts, runs them through their executors, applies transitions.

Steps run concurrently on the event loop, up to ``concurrency``. Database work that may wait
runs on one thread of the worker's own, so a slow commit or a busy lock never blocks the event
loop. On SQLite, the hot path (claims, transitions, heartbeats) first runs on the event loop
itself, with a transaction that fails at once instead of waiting for another writer's lock,
and moves to the thread only when it must wait: a commit there is a few hundred microseconds,
cheaper than handing the interpreter lock to a second thread and back (see ``_db_call``).
A heartbeat extends the leases held; an attempt whose lease was lost (taken over after
expiry, or cancelled by an operator) is abandoned, and its result could not be recorded anyway:
``queue.apply`` checks the fencing token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import DBAPIError

from fabflow.errors import StepError
from fabflow.files import FileStore, LocalFileStore
from fabflow.flows.model import Flow, StepDefinition
from fabflow.flows.validate import parse_flow
from fabflow.ids import new_id
from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import AttemptState, ExecutionState, Outcome
from fabflow.lifecycle.transition import AttemptEnd, Decision, decide
from fabflow.settings import Settings
from fabflow.steps.base import StepContext, StepExecutor, StepResult
from fabflow.store import db, queue
from fabflow.store.db import Listener, claims_only, connect_no_wait, is_busy
from fabflow.store.orders import EXECUTION_COLUMNS, load_resources
from fabflow.store.repository import Store
from fabflow.store.schema import executions

log = logging.getLogger(__name__)
T = TypeVar("T")
DEADLINE_TICK_S = 0.05  # how often running attempts are checked against their deadline

_EXECUTIONS = select(*EXECUTION_COLUMNS).where(
    executions.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass(eq=False, slots=True)
class Running:
    """An attempt in progress on this worker: one task, and its deadline."""

    claim: queue.Claimed
    resource: dict[str, Any]
    flow: Flow
    cancelled: asyncio.Event
    started: float  # perf_counter
    leased_at: float  # wall clock, no later than its lease last began (claim or heartbeat)
    step: StepDefinition | None = None
    task: asyncio.Task[StepResult] | None = None
    deadline: float = float("inf")  # loop time
    timeout_s: float = 0.0
    lost: bool = False  # the lease is gone: nothing of this attempt may be recorded
    ended: bool = False  # its end (result, error or timeout) is decided


@dataclass(slots=True)
class Completion:
    """A finished attempt waiting for the next database cycle to record it."""

    transition: queue.Transition
    queued: float  # perf_counter when it joined the outbox


@dataclass(slots=True)
class Ahead:
    """An attempt claimed ahead, waiting for a free slot."""

    claim: queue.Claimed
    resource: dict[str, Any]
    leased_at: float  # wall clock, no later than its lease last began (claim or heartbeat)


STATS_SAMPLES = 100_000  # latency samples kept: the latest, so a worker's memory stays flat


@dataclass
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    lost: int = 0
    # From an attempt's run_after to its claim, and from its end to its commit.
    wakeup_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_SAMPLES))
    transition_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_SAMPLES))


class Worker:
    """Runs attempts from one store until told to stop."""

    def __init__(
        self,
        store: Store,
        executors: dict[str, StepExecutor],
        *,
        settings: Settings | None = None,
        files: FileStore | None = None,
        concurrency: int | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or store.settings
        self.executors = executors
        self.files = files or LocalFileStore(self.settings.files_dir)
        self.concurrency = concurrency or self.settings.concurrency
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{new_id('w')[-6:]}"
        self.default_policy = RetryPolicy(
            max_attempts=self.settings.retry_max_attempts,
            initial_delay=self.settings.retry_initial_delay_ms / 1000,
            backoff=self.settings.retry_backoff,
            max_delay=self.settings.retry_max_delay_ms / 1000,
        )
        self.stats = WorkerStats()
        self.running: dict[int, Running] = {}
        self._flows: dict[tuple[int, int], Flow] = {}
        self._flow_meta: dict[tuple[int, int], dict[str, Any]] = {}
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fabflow-db-{self.id}")
        self._inline_db = store.is_sqlite  # see _db_call
        self._loop_thread = 0  # the event loop's thread
        self._loop_conn: Connection | None = None  # its connection: never waits for a lock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[Completion] = []
        self._ready: deque[Ahead] = deque()
        # Finished attempts whose transitions are not committed yet. Each holds its slot until
        # its commit: a worker that dies (or loses the database) then leaves at most one
        # unrecorded side effect per slot to be repeated, never a finished one plus the next.
        self._unrecorded = 0
        self._next_takeover = 0.0  # when to look for expired leases next
        # Attempts stopped because their lease ran out unrenewed: given back to the queue by
        # the next heartbeat that reaches the database, instead of waiting out the lease.
        self._give_back: list[queue.Claimed] = []
        self._filling = False

    # -- lifecycle -----------------------------------------------------------------------

    def wake(self) -> None:
        """Thread-safe: a new attempt may be runnable now."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        """Stop claiming; running attempts finish (see ``run``). Safe from signal handlers."""
        self._stopping.set()
        self._wake.set()

    async def run(self, *, burst: bool = False, until: Callable[[], bool] | None = None) -> None:
        """Claim and run attempts until ``stop()``; with ``burst``, until nothing is runnable;
        with ``until``, until it returns True (checked after each database cycle)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.store.on_enqueue.append(self.wake)
        await self._db_call(
            self.store.register_worker, self.id, socket.gethostname(), os.getpid(), self.concurrency
        )
        if self._inline_db:
            self._loop_conn = connect_no_wait(self.store.engine)
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        deadlines = asyncio.create_task(self._deadline_loop())
        listener = None
        if not self.store.is_sqlite:
            listener = Listener(self.store.settings.effective_database_url, self.wake)
            listener.start()
        try:
            await self._pump(burst, until)
            await self._drain()
        finally:
            heartbeat.cancel()
            deadlines.cancel()
            if self._loop_conn is not None:
                self._loop_conn.close()
                self._loop_conn = None
            if listener is not None:
                await asyncio.get_running_loop().run_in_executor(None, listener.stop)
            with contextlib.suppress(ValueError):
                self.store.on_enqueue.remove(self.wake)
            await self._db_call(self._mark_stopped)
            self._db.shutdown(wait=True)

    async def _pump(self, burst: bool, until: Callable[[], bool] | None) -> None:
        """The one loop that talks to the database: each cycle records the transitions that
        finished since the last one and claims work for the free slots, in one transaction
        (group commit: one commit serves many transitions, each still all-or-nothing)."""
        while not self._stopping.is_set():
            if until is not None and until():
                return
            if self._inline_db:
                await asyncio.sleep(0)  # the cycle may not have yielded: let steps run first
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            # Claim ahead (up to one more round of ``concurrency``): when a slot frees (its
            # attempt's transition committed), its next attempt is already at hand.
            held = len(self.running) + self._unrecorded + len(self._ready)
            room = 2 * self.concurrency - held
            claimed = await self._cycle(batch, room)
            idle = not (self.running or self._ready or self._outbox)
            if burst and claimed == 0 and idle:
                return
            if not self._outbox and (claimed == 0 or room - claimed <= 0):
                await self._wait(self.settings.poll_seconds)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _drain(self) -> None:
        """Let running attempts finish within the grace period; release the rest."""
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        if self._ready or self._give_back:  # claimed ahead but never started, or stopped
            ahead = [a.claim for a in self._ready] + self._give_back
            self._ready.clear()
            self._give_back = []
            await self._db_call(self._release, ahead)
        if self.running:
            log.info("stopping: waiting for %d running attempt(s)", len(self.running))
        while (self.running or self._outbox) and time.monotonic() < deadline:
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                await self._cycle(batch, 0)
            else:
                await self._wait(min(0.05, max(deadline - time.monotonic(), 0.0)))
        if self.running:
            log.warning("grace period over: releasing %d attempt(s) to others", len(self.running))
            held = [r.claim for r in self.running.values()]
            for r in list(self.running.values()):
                self._abandon(r)
            await self._db_call(self._release, held)
        for item in self._outbox:
            self._recorded(item, False)
        self._outbox.clear()

    # -- the database cycle --------------------------------------------------------------

    async def _cycle(self, batch: list[Completion], free: int) -> int:
        if not batch and free <= 0:
            return 0
        leased_at = time.time()
        limit = min(max(free, 0), 32)
        won, claims = await self._db_call(self._cycle_sync, batch, limit, inline=True)
        # Committed: the slots these attempts held are free now, before the claimed attempts'
        # orders are read (a slot waits for its attempt's commit, no longer).
        for item, result in zip(batch, won, strict=True):
            self._recorded(item, result)
        self._fill()
        resources = await self._db_call(self._load_sync, claims, inline=True) if claims else {}
        now = time.time()
        for c in claims:
            self.stats.claimed += 1
            self.stats.wakeup_ms.append(max(0.0, (now - c.run_after) * 1000))
            resource = resources.get(c.execution_id)
            if resource is not None:  # None: the order vanished, nothing to run
                self._ready.append(Ahead(c, resource, leased_at))
        self._fill()
        return len(claims)

    def _fill(self) -> None:
        """Start claimed attempts while there are free slots."""
        if self._filling:  # an attempt that ends as it starts calls back in here
            return
        self._filling = True
        try:
            while self._ready and len(self.running) + self._unrecorded < self.concurrency:
                if self._stopping.is_set() or not self._lease_fresh(self._ready[0]):
                    return
                ahead = self._ready.popleft()
                self._start(ahead.claim, ahead.resource, ahead.leased_at)
        finally:
            self._filling = False

    def _lease_fresh(self, ahead: Ahead) -> bool:
        """Start an attempt claimed ahead only while its lease is surely ours: with at most
        one heartbeat missed. Once the database has been out of reach for longer, another
        worker may have taken it over; the next heartbeat that includes it tells (renewed, or
        lost). Only a heartbeat that renewed this very claim counts: one claimed while a
        heartbeat was under way is not in it."""
        left = ahead.leased_at + self.settings.lease_seconds - time.time()
        return left > self.settings.lease_seconds / 3

    def _cycle_sync(
        self, batch: list[Completion], limit: int
    ) -> tuple[list[bool], list[queue.Claimed]]:
        """Record ``batch`` and claim up to ``limit`` attempts, in one transaction."""
        now = time.time()
        with self._write() as conn:
            if not batch:
                claims_only(conn)
            won = queue.apply(conn, [item.transition for item in batch], now)
            claims = queue.claim(
                conn, self.id, limit, now, self.settings.lease_seconds, self._takeover_due(now)
            )
            if any(item.transition.decision.next is not None for item in batch):
                self.store.notify_enqueued(conn)
        return won, claims

    def _load_sync(self, claims: list[queue.Claimed]) -> dict[str, dict[str, Any]]:
        with self._read() as conn:
            return self._load(conn, claims)

    def _takeover_due(self, now: float) -> bool:
        """Look for expired leases on the first cycle, then once per heartbeat interval: they
        are rare, and the query would otherwise cost a round trip on every cycle."""
        if now < self._next_takeover:
            return False
        self._next_takeover = now + max(self.settings.lease_seconds / 3, 0.05)
        return True

    def _load(self, conn: Any, claims: list[queue.Claimed]) -> dict[str, dict[str, Any]]:
        """The flows and order resources the claimed attempts need."""
        ids = {"ids": [c.execution_id for c in claims]}
        rows = {r["id"]: r for r in db.fetch(conn, _EXECUTIONS, ids)}
        by_order = {r["order_id"]: r for r in rows.values()}
        for c in claims:
            row = rows[c.execution_id]
            key = (row["flow_pk"], row["flow_version"])
            c.extra.update(flow_key=key, had_error=row["had_error"], visits=row["visits"])
            self._flow(conn, *key)
        order_ids = {e: r["order_id"] for e, r in rows.items()}
        needed = [order_ids[c.execution_id] for c in claims if self._needs_order(c)]
        stored: dict[str, list[dict[str, Any]]] = {}
        resources = (
            load_resources(self.store, conn, needed, stored_files=stored, executions=by_order)
            if needed
            else []
        )
        loaded = {r["id"]: r for r in resources}
        for c in claims:
            c.extra["stored_files"] = tuple(stored.get(order_ids[c.execution_id], ()))
        # Steps that read nothing of the order but its id get only that.
        return {e: loaded.get(o) or {"id": o} for e, o in order_ids.items()}

    def _needs_order(self, claim: queue.Claimed) -> bool:
        flow = self._flows[claim.extra["flow_key"]]
        if claim.step_id not in flow:
            return True
        executor = self.executors.get(flow.step(claim.step_id).type)
        return executor is None or executor.needs_order

    def _flow(self, conn: Any, flow_pk: int, version: int) -> Flow:
        key = (flow_pk, version)
        flow = self._flows.get(key)
        if flow is None:
            meta, definition = self.store.flow_definition(conn, flow_pk, version)
            flow = parse_flow(definition, name=meta["name"])
            self._flows[key] = flow
            self._flow_meta[key] = meta
        return flow

    # -- one attempt ---------------------------------------------------------------------

    def _start(self, claim: queue.Claimed, resource: dict[str, Any], leased_at: float) -> None:
        """Start one attempt: its executor runs as one task, cut off at its deadline (see
        ``_deadline_loop``), even if the step swallows cancellation."""
        assert self._loop is not None
        flow = self._flows[claim.extra["flow_key"]]
        running = Running(claim, resource, flow, asyncio.Event(), time.perf_counter(), leased_at)
        earlier = self.running.get(claim.attempt_id)
        if earlier is not None:
            # This worker took its own attempt over: its lease ran out unnoticed (the loop
            # stalled past the lease). The new claim is the one that holds it.
            log.warning(
                "attempt %s: taken over by this very worker; stopping its first run",
                claim.attempt_id,
            )
            self._abandon(earlier)
        self.running[claim.attempt_id] = running
        if claim.step_id not in flow:
            message = f"no step {claim.step_id!r}"
            self._end(running, AttemptEnd(Outcome.ERROR, claim.attempt, "internal", message))
            return
        step = running.step = flow.step(claim.step_id)
        if claim.taken_over:
            log.warning(
                "taking over attempt %s of step %r (lease expired)",
                claim.attempt_id,
                step.step_definition_id,
            )
        executor = self.executors.get(step.type)
        if executor is None:
            message = (
                f"no executor for step type {step.type!r}: is its plugin installed on this worker?"
            )
            self._end(running, AttemptEnd(Outcome.ERROR, claim.attempt, "internal", message))
            return
        timeout_s = step.timeout_s or self.settings.default_step_timeout_ms / 1000
        ctx = self._context(claim, resource, flow, step, timeout_s, running.cancelled)
        running.task = self._loop.create_task(executor.execute(ctx))
        running.timeout_s = timeout_s
        running.deadline = self._loop.time() + timeout_s
        running.task.add_done_callback(functools.partial(self._done, running))

    def _done(self, running: Running, task: asyncio.Task[StepResult]) -> None:
        """The executor's task finished: its outcome decides the attempt, unless the deadline
        or a lost lease already did."""
        if task.cancelled():
            if not running.ended and not running.lost:
                log.warning(
                    "attempt %s was cancelled; its lease will expire", running.claim.attempt_id
                )
                self._forget(running)
            return
        if running.ended or running.lost:
            task.exception()  # retrieved: the result no longer matters
            return
        self._end(running, *_outcome(task, running.claim.attempt))

    async def _deadline_loop(self) -> None:
        """Cut off attempts past their deadline, and stop those whose lease ran out without
        a renewal, checked every 50 ms: one timer for all attempts costs less than one each,
        and steps' deadlines and leases are seconds long."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(DEADLINE_TICK_S)
            now = loop.time()
            for running in [r for r in self.running.values() if r.deadline <= now]:
                self._timed_out(running)
            # Early: another worker may take the attempt over once the lease is out, and this
            # timer may itself run late on a busy machine.
            lease = self.settings.lease_seconds
            doubt = time.time() - lease + max(DEADLINE_TICK_S, lease / 10)
            for running in [r for r in self.running.values() if r.leased_at <= doubt]:
                self._lease_ran_out(running)

    def _lease_ran_out(self, running: Running) -> None:
        """The lease was not renewed in time (the database is out of reach, or this process
        stalled): another worker may take the attempt over now and run it again. Stop it
        here, so that the two do not run at once; it is not recorded, the other run is."""
        if running.ended or running.lost:
            return
        log.warning(
            "attempt %s: lease not renewed within %g s (database out of reach?); stopping it,"
            " to run again once the database answers",
            running.claim.attempt_id,
            self.settings.lease_seconds,
        )
        self._abandon(running)
        self._give_back.append(running.claim)
        self._fill()

    def _timed_out(self, running: Running) -> None:
        if running.ended or running.lost:
            return
        timeout_s = running.timeout_s
        running.cancelled.set()
        assert running.task is not None and running.step is not None
        running.task.cancel()
        step_id = running.step.step_definition_id
        message = f"step {step_id!r} did not finish within {timeout_s:g} s"
        self._end(running, AttemptEnd(Outcome.TIMEOUT, running.claim.attempt, "timeout", message))

    def _end(
        self,
        running: Running,
        end: AttemptEnd,
        result: StepResult | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Decide the transition; the next database cycle records it. The slot is free now."""
        running.ended = True
        claim = running.claim
        record = queue.AttemptRecord(
            duration_ms=(time.perf_counter() - running.started) * 1000,
            error_type=end.error_type,
            error_message=end.error_message,
            details=details or {},
            files=result.files if result is not None else None,
        )
        decision = _decide(running.step, end, claim, self.default_policy)
        next_type = ""
        if decision.next is not None and decision.next.step_id in running.flow:
            next_type = running.flow.step(decision.next.step_id).type
        transition = queue.Transition(claim, running.resource["id"], decision, record, next_type)
        self._outbox.append(Completion(transition, time.perf_counter()))
        self._unrecorded += 1
        self._forget(running)

    def _forget(self, running: Running) -> None:
        self.running.pop(running.claim.attempt_id, None)
        self._fill()
        self._wake.set()

    def _abandon(self, running: Running) -> None:
        """The lease is lost (or given back): stop the attempt, record nothing of it."""
        running.lost = True
        running.cancelled.set()
        if running.task is not None:
            running.task.cancel()
        self.running.pop(running.claim.attempt_id, None)

    def _context(
        self,
        claim: queue.Claimed,
        resource: dict[str, Any],
        flow: Flow,
        step: StepDefinition,
        timeout_s: float,
        cancelled: asyncio.Event,
    ) -> StepContext:
        key = claim.extra["flow_key"]
        return StepContext(
            order=resource,
            flow=self._flow_meta[key],
            step_id=step.step_definition_id,
            step_type=step.type,
            success_status=step.success_status,
            options=step.options,
            timeout_s=timeout_s,
            idempotency_key=claim.idempotency_key,
            attempt=claim.attempt,
            settings=self.settings,
            files=self.files,
            cancelled=cancelled,
            error=claim.error_context,
            tenant=claim.tenant_id,
            stored_files=claim.extra.get("stored_files", ()),
            deadline_enforced=True,  # _deadline_loop
        )

    def _recorded(self, item: Completion, won: bool) -> None:
        self._unrecorded -= 1
        self.stats.transition_ms.append((time.perf_counter() - item.queued) * 1000)
        if won:
            self.stats.completed += 1
            return
        self.stats.lost += 1
        claim = item.transition.held
        log.warning(
            "attempt %s of step %r: lease lost (taken over or cancelled); result not recorded",
            claim.attempt_id,
            claim.step_id,
        )

    # -- leases --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = max(self.settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            # Running attempts and those claimed ahead alike: their leases, renewed here.
            renewing: list[Running | Ahead] = [r for r in self.running.values() if not r.lost]
            renewing += self._ready
            held = [r.claim for r in renewing]
            give_back, self._give_back = self._give_back, []
            try:
                lost, renewed_at = await self._db_call(
                    self._heartbeat_sync, held, give_back, inline=True
                )
            except Exception:
                log.exception("heartbeat failed; will try again")
                self._give_back[:0] = give_back
                continue
            gone = set(lost)
            for r in renewing:
                if r.claim.attempt_id not in gone:
                    r.leased_at = renewed_at
            if lost:
                self._ready = deque(a for a in self._ready if a.claim.attempt_id not in gone)
            for attempt_id in lost:
                running = self.running.get(attempt_id)
                if running is not None:
                    log.warning("attempt %s: lease lost, abandoning it", attempt_id)
                    self._abandon(running)
            self._fill()  # claims held back while their leases were in doubt may start

    def _heartbeat_sync(
        self, held: list[queue.Claimed], give_back: list[queue.Claimed]
    ) -> tuple[list[int], float]:
        """Renew the leases held and give back ``give_back``; return the leases lost, and
        when the others were renewed."""
        now = time.time()
        state = "draining" if self._stopping.is_set() else "running"
        with self._write() as conn:
            lost = queue.heartbeat(conn, held, now, self.settings.lease_seconds)
            queue.release(conn, give_back, now)  # a no-op for any taken over meanwhile
            self.store.worker_heartbeat(conn, self.id, state, now)
        return lost, now

    def _release(self, held: list[queue.Claimed]) -> None:
        with self.store.write() as conn:
            queue.release(conn, held, time.time())

    def _mark_stopped(self) -> None:
        with self.store.write() as conn:
            self.store.worker_heartbeat(conn, self.id, "stopped", time.time())

    # -- database calls ------------------------------------------------------------------

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction: on the event loop's thread, one that never waits for a lock."""
        return self._loop_transaction("IMMEDIATE") if self._on_loop() else self.store.write()

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._loop_transaction("DEFERRED") if self._on_loop() else self.store.read()

    def _on_loop(self) -> bool:
        return self._loop_conn is not None and threading.get_ident() == self._loop_thread

    @contextlib.contextmanager
    def _loop_transaction(self, mode: str) -> Iterator[Connection]:
        """A transaction on the event loop's own connection (held for the worker's life: no
        pool checkout, and its pages stay cached between the loop's transactions)."""
        assert self._loop_conn is not None
        conn = self._loop_conn.execution_options(sqlite_begin=mode)
        with conn.begin():
            yield conn

    async def _db_call(self, fn: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """Run ``fn`` on the database thread, retrying with backoff while the database is down.

        With ``inline`` on SQLite, ``fn`` first runs right here on the event loop, its write
        transaction (``_write``) failing at once if another process holds the write lock; it
        then runs on the thread, which waits for the lock. Nothing is lost by the first try:
        SQLite takes the lock at BEGIN, before anything is written. Reads never wait in WAL
        mode. What may still hold the loop is SQLite's own work: a commit that checkpoints
        the WAL (every 1000 pages or so) writes them to the database file."""
        if inline and self._inline_db:
            try:
                return fn(*args)
            except DBAPIError as exc:
                if not (is_busy(exc) or _is_disconnect(exc)):
                    raise
        loop = asyncio.get_running_loop()
        delay = 0.1
        # Back off no further than the heartbeat interval: once the database is back, the
        # leases held must be renewed before they expire, or other workers take them over
        # and the steps run twice.
        longest = min(5.0, max(self.settings.lease_seconds / 3, 0.1))
        while True:
            try:
                return await loop.run_in_executor(self._db, fn, *args)
            except DBAPIError as exc:
                if not _is_disconnect(exc):
                    raise
                log.warning("database unreachable (%s); retrying in %.1f s", exc.orig, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)


def _is_disconnect(exc: DBAPIError) -> bool:
    # Operational errors (connection refused, server restarting) are worth waiting out.
    return bool(exc.connection_invalidated) or type(exc).__name__ == "OperationalError"


def _decide(
    step: StepDefinition | None, end: AttemptEnd, claim: queue.Claimed, policy: RetryPolicy
) -> Decision:
    if step is None:
        return Decision(AttemptState.ERROR, None, None, ExecutionState.FAILED, True, "step_failed")
    return decide(
        step,
        end,
        had_error=bool(claim.extra.get("had_error")),
        default_policy=policy,
        error_context=claim.error_context,
    )


def _outcome(
    task: asyncio.Future[StepResult], attempt: int
) -> tuple[AttemptEnd, StepResult | None, dict[str, Any]]:
    exc = task.exception()
    if exc is None:
        result = task.result()
        return AttemptEnd(Outcome.SUCCESS, attempt), result, result.details
    if isinstance(exc, StepError):
        end = AttemptEnd(
            Outcome.ERROR, attempt, exc.error_type, exc.message, exc.transient, exc.retry_after
        )
        return end, None, exc.details
    log.error("step raised an unexpected error", exc_info=exc)
    return AttemptEnd(Outcome.ERROR, attempt, "internal", f"{type(exc).__name__}: {exc}"), None, {}
