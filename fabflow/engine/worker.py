"""The worker: claims runnable attempts, runs them through their executors, records their ends.

Steps run concurrently on the event loop, up to ``concurrency``. The worker talks to the
database only through its queue port (``fabflow.store.queue.SqlQueue``), and reads time only
through its clock. One loop (``_pump``) makes every database cycle: it records the attempts
that ended since the last one and claims work for the free slots, in one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from fabflow.engine.attempts import AttemptRunner, Completion, Running
from fabflow.engine.clock import Clock, SystemClock
from fabflow.engine.fairness import Plan, ReadyQueue, Shares
from fabflow.engine.leases import TICK_S, Leases, Ready
from fabflow.engine.port import QueuePort
from fabflow.errors import StoreUnavailable
from fabflow.files import FileStore, LocalFileStore
from fabflow.ids import new_id
from fabflow.settings import Settings
from fabflow.steps.base import StepExecutor
from fabflow.store.queue import Claim, SqlQueue, Transition
from fabflow.store.repository import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_CLAIM = 32  # attempts claimed in one cycle at most
STATS_SAMPLES = 100_000  # latency samples kept: the latest, so a worker's memory stays flat


@dataclass
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    lost: int = 0
    heartbeats: int = 0
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
        clock: Clock | None = None,
        queue: QueuePort | None = None,
    ) -> None:
        self.settings = settings or store.settings
        self.concurrency = concurrency or self.settings.concurrency
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{new_id('w')[-6:]}"
        self.clock = clock or SystemClock()
        self.queue = queue or SqlQueue(store, self.settings.lease_seconds)
        self.stats = WorkerStats()
        files = files or LocalFileStore(self.settings.files_dir)
        self.attempts = AttemptRunner(executors, self.settings, files, self.clock, self._freed)
        self.leases = Leases(self.settings.lease_seconds, self.clock)
        self.shares = Shares(self.concurrency, self.settings.tenant_share)
        self._ready = ReadyQueue()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._filling = False
        self._counting: asyncio.Task[None] | None = None  # see ``_count_waiting``

    @property
    def running(self) -> dict[int, Running]:
        """The attempts running now, by attempt id."""
        return self.attempts.running

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
        await self.queue.open(self.wake)
        try:
            if not self.settings.callback_secret:
                secret = await self._call(self.queue.callback_secret)
                self.attempts.settings = self.settings.with_(callback_secret=secret)
            await self._call(
                self.queue.register, self.id, socket.gethostname(), os.getpid(), self.concurrency
            )
            timers = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._ticks())]
            try:
                await self._pump(burst, until)
                await self._drain()
            finally:
                for timer in timers:
                    timer.cancel()
                if self._counting is not None:  # a few milliseconds: let it end
                    await asyncio.wait([self._counting])
            await self._call(self.queue.mark, self.id, "stopped", self.clock.time())
        finally:
            await self.queue.close()

    async def _pump(self, burst: bool, until: Callable[[], bool] | None) -> None:
        """Each cycle records the transitions that finished since the last one and claims
        work for the free slots, in one transaction."""
        while not self._stopping.is_set():
            if until is not None and until():
                return
            await asyncio.sleep(0)  # the cycle may not have yielded: let steps run first
            self._wake.clear()
            if self._counting is None and self.shares.survey_due(self.clock.monotonic()):
                self._counting = asyncio.create_task(self._count_waiting())
            batch = self.attempts.take_outbox()
            # Claim ahead (up to one more round of ``concurrency``): when a slot frees (its
            # attempt's transition committed), its next attempt is already at hand.
            room = 2 * self.concurrency - self._held()
            claimed = await self._cycle(batch, room)
            idle = not (self.attempts.running or self._ready or self.attempts.outbox)
            if burst and claimed == 0 and idle:
                return
            if not self.attempts.outbox and (claimed == 0 or room - claimed <= 0):
                await self.clock.wait(self._wake, self._idle_s())

    def _held(self) -> int:
        return len(self.attempts.running) + self.attempts.unrecorded + len(self._ready)

    def _idle_s(self) -> float:
        """How long to wait for a wake-up: until the next poll, or the next count of the
        tenants waiting (``fairness``), whichever comes first."""
        if self._counting is not None:  # it wakes the loop when done
            return self.settings.poll_seconds
        return min(self.settings.poll_seconds, self.shares.until_survey(self.clock.monotonic()))

    async def _count_waiting(self) -> None:
        """Count each tenant's runnable attempts, for the next claims to be planned from.
        Beside the cycles, not in them: it reads the whole queue."""
        started = self.clock.monotonic()
        try:
            counts = await self.queue.runnable(self.clock.time())
        except Exception:  # the cycles report an outage; the next count is due soon
            log.debug("counting the tenants waiting failed", exc_info=True)
            return
        finally:
            self._counting = None
        now = self.clock.monotonic()
        self.shares.surveyed(counts, now - started, now)
        self._wake.set()

    async def _drain(self) -> None:
        """Let running attempts finish within the grace period; release the rest."""
        deadline = self.clock.monotonic() + self.settings.shutdown_grace_seconds
        if self._ready or self.leases.give_back:  # claimed ahead but never started, or stopped
            held = [r.work.claim for r in self._ready] + self.leases.give_back
            self._ready.clear()
            self.leases.give_back = []
            await self._call(self.queue.release, held, self.clock.time())
        if self.attempts.running:
            log.info("stopping: waiting for %d running attempt(s)", len(self.attempts.running))
        while self.attempts.running or self.attempts.outbox:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                break
            self._wake.clear()
            batch = self.attempts.take_outbox()
            if batch:
                await self._cycle(batch, 0)
            else:
                await self.clock.wait(self._wake, min(TICK_S, left))
        if self.attempts.running:
            running = list(self.attempts.running.values())
            log.warning("grace period over: releasing %d attempt(s) to others", len(running))
            for r in running:
                self.attempts.abandon(r)
            held = [r.work.claim for r in running]
            await self._call(self.queue.release, held, self.clock.time())
        for item in self.attempts.take_outbox():
            self._recorded(item, False)

    # -- the database cycle --------------------------------------------------------------

    async def _cycle(self, batch: list[Completion], free: int) -> int:
        plan = None
        if not self._stopping.is_set():
            plan = self.shares.plan(self.attempts.tenants, self._ready.tenants, free, MAX_CLAIM)
        limit = min(max(free, 0), MAX_CLAIM) if plan is None else plan.rest
        asked = limit if plan is None else plan.asked
        if not batch and asked <= 0:
            self.shares.deep = True  # no room to claim: what waits is unseen
            return 0
        leased_at = now = self.clock.time()
        finished = [item.transition for item in batch]
        take_over = self.leases.takeover_due(now)
        expire_waits = self.leases.waits_due(now)
        args = (finished, limit, self.id, now, take_over, expire_waits)
        won, claims = await self._call(self._claim_call(plan), *args)
        if asked > 0:
            self.shares.claimed(claims, plan, asked)
        # Committed: the slots these attempts held are free now, before the claimed attempts'
        # orders are read (a slot waits for its attempt's commit, no longer).
        for item, result in zip(batch, won, strict=True):
            self._recorded(item, result)
        if self.shares.waiting:  # their next steps wait now: no need to count them
            self.shares.queued(_next_runnable(finished, won))
        self._fill()
        if not claims:
            return 0
        work = await self._call(self.queue.load, claims, self.attempts.light_types)
        now = self.clock.time()
        for c in claims:
            self.stats.claimed += 1
            self.stats.wakeup_ms.append(max(0.0, (now - c.run_after) * 1000))
        self._ready.extend(Ready(w, leased_at) for w in work)
        self._fill()
        return len(claims)

    def _claim_call(
        self, plan: Plan | None
    ) -> Callable[..., Awaitable[tuple[list[bool], list[Claim]]]]:
        """The queue's cycle; with a fair plan, claiming each tenant's quota. Without one, the
        port's original call (queues that wrap it, as tests' do, keep working)."""
        if plan is None:
            return self.queue.cycle
        return functools.partial(self.queue.cycle, quotas=plan.quotas)

    def _fill(self) -> None:
        """Start claimed attempts while there are free slots (and spare ones for a tenant
        below its share while another holds borrowed slots: ``fairness``)."""
        if self._filling:  # an attempt that ends as it starts calls back in here
            return
        self._filling = True
        try:
            while True:
                ready = self._ready.next(
                    self.attempts.tenants, self._busy(), self.concurrency, self.shares.cap
                )
                if ready is None or self._stopping.is_set() or not self.leases.fresh(ready):
                    return
                self._ready.remove(ready)
                self.attempts.start(ready.work, ready.leased_at)
        finally:
            self._filling = False

    def _busy(self) -> int:
        return len(self.attempts.running) + self.attempts.unrecorded

    def _freed(self) -> None:
        """An attempt ended or was dropped: its slot may take the next one."""
        self._fill()
        self._wake.set()

    def _recorded(self, item: Completion, won: bool) -> None:
        self.attempts.unrecorded -= 1
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

    # -- timers --------------------------------------------------------------------------

    async def _ticks(self) -> None:
        """Cut off attempts past their deadline and stop those whose lease ran out unrenewed,
        every 50 ms: one timer for all attempts costs less than one each, and deadlines and
        leases are seconds long."""
        while True:
            await self.clock.sleep(TICK_S)
            self.attempts.cut_off_late()
            if self.leases.stop_unrenewed(self.attempts):
                self._fill()

    async def _heartbeats(self) -> None:
        while True:
            await self.clock.sleep(self.leases.interval)
            await self._heartbeat()

    async def _heartbeat(self) -> None:
        """Renew the leases held, give back those stopped, and drop what was lost."""
        renewing = Leases.renewing(self.attempts, list(self._ready))
        give_back, self.leases.give_back = self.leases.give_back, []
        state = "draining" if self._stopping.is_set() else "running"
        now = self.clock.time()
        held = [r.work.claim for r in renewing]
        try:
            lost = await self.queue.heartbeat(self.id, held, give_back, state, now)
        except StoreUnavailable as exc:
            log.warning("heartbeat failed (%s); will try again", exc)
            self.leases.give_back[:0] = give_back
            return
        except Exception:
            log.exception("heartbeat failed; will try again")
            self.leases.give_back[:0] = give_back
            return
        self.stats.heartbeats += 1
        gone = set(lost)
        for r in renewing:
            if r.work.claim.attempt_id not in gone:
                r.leased_at = now
        if lost:
            self._ready.keep(lambda r: r.work.claim.attempt_id not in gone)
        for attempt_id in lost:
            running = self.attempts.running.get(attempt_id)
            if running is not None:
                log.warning("attempt %s: lease lost, abandoning it", attempt_id)
                self.attempts.abandon(running)
        self._fill()  # claims held back while their leases were in doubt may start

    # -- calls to the queue --------------------------------------------------------------

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``fn(*args)``, tried again with backoff while the database is out of reach.

        Back off no further than the heartbeat interval: once the database is back, the
        leases held must be renewed before they expire, or other workers take them over and
        the steps run twice."""
        delay = 0.1
        longest = min(5.0, max(self.settings.lease_seconds / 3, 0.1))
        while True:
            try:
                return await fn(*args)
            except StoreUnavailable as exc:
                log.warning("%s; retrying in %.1f s", exc, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, longest)


def _next_runnable(finished: list[Transition], won: list[bool]) -> Iterator[str]:
    """The tenants of the attempts ``finished`` queued to run at once (a next step, not a
    retry after its backoff), one per attempt."""
    for transition, recorded in zip(finished, won, strict=True):
        following = transition.final.next
        if recorded and following is not None and following.delay <= 0:
            yield transition.held.tenant_id
