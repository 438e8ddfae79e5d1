"""The leases a worker holds: renewed by heartbeats, given back, and doubted in time.

A claim gives the worker a lease on the attempt until ``lease_seconds`` from then; each
heartbeat (every third of a lease) renews the leases of the attempts running and claimed
ahead. A lease that was not renewed in time may be taken over by another worker, so:

- an attempt claimed ahead starts only while its lease is surely fresh;
- a running attempt whose lease ran out unrenewed is stopped (the other worker's run is the
  one recorded) and given back to the queue by the next heartbeat that reaches the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fabflow.engine.attempts import AttemptRunner, Running
from fabflow.engine.clock import Clock
from fabflow.store.queue.records import Claim, Work

log = logging.getLogger(__name__)
TICK_S = 0.05  # how often running attempts are checked against their deadline and lease
WAITS_EVERY_S = 0.5  # how often the queue is asked for waits past their deadline


@dataclass(slots=True)
class Ready:
    """An attempt claimed ahead, waiting for a free slot."""

    work: Work
    leased_at: float  # wall clock, no later than its lease last began (claim or heartbeat)


class Leases:
    """The lease arithmetic of one worker, and the attempts it must give back."""

    def __init__(self, lease_seconds: float, clock: Clock) -> None:
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.interval = max(lease_seconds / 3, TICK_S)  # between heartbeats
        self.give_back: list[Claim] = []  # stopped for an unrenewed lease
        self._next_takeover = 0.0
        self._next_waits = 0.0

    def fresh(self, ready: Ready) -> bool:
        """Start an attempt claimed ahead only while its lease is surely ours: with at most
        one heartbeat missed. Once the database has been out of reach for longer, another
        worker may have taken it over; the next heartbeat that includes it tells (renewed, or
        lost). Only a heartbeat that renewed this very claim counts."""
        left = ready.leased_at + self.lease_seconds - self.clock.time()
        return left > self.lease_seconds / 3

    def waits_due(self, now: float) -> bool:
        """Look for waits past their deadline twice a second: a wait is timed out within a
        second of its deadline while a worker runs."""
        if now < self._next_waits:
            return False
        self._next_waits = now + WAITS_EVERY_S
        return True

    def takeover_due(self, now: float) -> bool:
        """Look for expired leases on the first cycle, then once per heartbeat interval: they
        are rare, and the query would otherwise cost a round trip on every cycle."""
        if now < self._next_takeover:
            return False
        self._next_takeover = now + self.interval
        return True

    def stop_unrenewed(self, runner: AttemptRunner) -> bool:
        """Stop the running attempts whose lease ran out unrenewed (the database is out of
        reach, or this process stalled): another worker may take one over now and run it
        again, and the two must not run at once. Early by a tenth of a lease, as this check
        may itself run late on a busy machine. Whether any was stopped."""
        doubt = self.clock.time() - self.lease_seconds + max(TICK_S, self.lease_seconds / 10)
        stale = [r for r in runner.running.values() if r.leased_at <= doubt and not r.ended]
        for running in stale:
            log.warning(
                "attempt %s: lease not renewed within %g s (database out of reach?); stopping"
                " it, to run again once the database answers",
                running.work.claim.attempt_id,
                self.lease_seconds,
            )
            runner.abandon(running)
            self.give_back.append(running.work.claim)
        return bool(stale)

    @staticmethod
    def renewing(runner: AttemptRunner, ready: list[Ready]) -> list[Running | Ready]:
        """Whose leases a heartbeat renews: running attempts and those claimed ahead alike."""
        held: list[Running | Ready] = [r for r in runner.running.values() if not r.lost]
        return held + ready
