"""The queue of attempts: what workers claim, renew, give back and finish.

``SqlQueue`` is the port the worker runs on: it owns every database detail of the hot path
(statements, transactions, the SQLite event-loop connection, PostgreSQL wake-ups, lost
connections) and hands the worker typed records (``records``).
"""

from __future__ import annotations

from fabflow.store.queue.claims import claim, depth, heartbeat, release
from fabflow.store.queue.port import SqlQueue
from fabflow.store.queue.records import AttemptRecord, Claim, Transition, Work
from fabflow.store.queue.transitions import apply, new_attempt

__all__ = [
    "AttemptRecord",
    "Claim",
    "SqlQueue",
    "Transition",
    "Work",
    "apply",
    "claim",
    "depth",
    "heartbeat",
    "new_attempt",
    "release",
]
