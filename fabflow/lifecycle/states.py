"""The states of executions and attempts, and the moves allowed between them.

Persisted values are lowercase strings that never change: rows in databases hold them. The
tables below are the whole answer to "which state may follow which"; the store writes a state
only with a guard built from them (``... WHERE state IN (sources_of(target))``).

Execution::

    pending ──claim──▶ running ──last step──▶ succeeded | failed
       │               │ ▲  ▲                      │
       │          wait │ │  └─────retry / rerun────┘ (and from cancelled)
       │               ▼ │ callback, confirm, reject, wait timeout
       │             waiting ──────────────────▶ succeeded | failed
       └──cancel──▶ cancelled ◀──cancel── running, waiting

Attempt::

    queued ──claim──▶ running ──end──▶ success | error | timeout
      │                 │  ▲ └─ release (lease given back) ──▶ queued
      │                 │  └ take over (lease expired, or a wait past its deadline)
      │                 └─ wait ──▶ waiting ──resolved──▶ success | error | timeout
      └──cancel──▶ cancelled ◀──cancel── running, waiting
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ExecutionState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # on a callback or a person: no worker holds it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in ENDED_EXECUTION_STATES


class AttemptState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # its step waits on a callback or a person, with a deadline
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self not in OPEN_ATTEMPT_STATES


class Outcome(StrEnum):
    """How one attempt ended."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    WAIT = "wait"  # the step started a wait: a callback or a person ends it


ENDED_EXECUTION_STATES = frozenset(
    {ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELLED}
)
OPEN_ATTEMPT_STATES = frozenset({AttemptState.QUEUED, AttemptState.RUNNING, AttemptState.WAITING})
# The attempt states an operator's retry looks back for: the step that did not succeed.
FAILED_ATTEMPT_STATES = frozenset(
    {AttemptState.ERROR, AttemptState.TIMEOUT, AttemptState.CANCELLED}
)

_E = ExecutionState
EXECUTION_MOVES: Mapping[ExecutionState, frozenset[ExecutionState]] = {
    # The first claim starts it; an operator may cancel it before.
    _E.PENDING: frozenset({_E.RUNNING, _E.CANCELLED}),
    # A step ended: the next one runs (running again), or the execution ends; or it waits.
    _E.RUNNING: frozenset({_E.RUNNING, _E.WAITING, _E.SUCCEEDED, _E.FAILED, _E.CANCELLED}),
    # The wait was resolved (callback, confirmation, rejection, deadline): as a step's end.
    _E.WAITING: frozenset({_E.RUNNING, _E.SUCCEEDED, _E.FAILED, _E.CANCELLED}),
    # Ended: only an operator's retry or rerun starts it again.
    _E.SUCCEEDED: frozenset({_E.RUNNING}),
    _E.FAILED: frozenset({_E.RUNNING}),
    _E.CANCELLED: frozenset({_E.RUNNING}),
}

_A = AttemptState
ATTEMPT_MOVES: Mapping[AttemptState, frozenset[AttemptState]] = {
    _A.QUEUED: frozenset({_A.RUNNING, _A.CANCELLED}),
    # Running again: taken over after its lease expired (a new fencing token). Queued again:
    # released by a worker that stopped before running it to its end.
    _A.RUNNING: frozenset(
        {_A.SUCCESS, _A.ERROR, _A.TIMEOUT, _A.CANCELLED, _A.QUEUED, _A.RUNNING, _A.WAITING}
    ),
    # Resolved by a callback, a person or its deadline; a worker claims an expired wait (running)
    # to time it out through the flow's error path.
    _A.WAITING: frozenset({_A.SUCCESS, _A.ERROR, _A.TIMEOUT, _A.CANCELLED, _A.RUNNING}),
    _A.SUCCESS: frozenset(),
    _A.ERROR: frozenset(),
    _A.TIMEOUT: frozenset(),
    _A.CANCELLED: frozenset(),
}


def execution_may_move(source: ExecutionState, target: ExecutionState) -> bool:
    return target in EXECUTION_MOVES[source]


def attempt_may_move(source: AttemptState, target: AttemptState) -> bool:
    return target in ATTEMPT_MOVES[source]


def execution_sources(target: ExecutionState) -> frozenset[ExecutionState]:
    """Every execution state from which ``target`` may follow: the guard of its update."""
    return frozenset(s for s, targets in EXECUTION_MOVES.items() if target in targets)


def attempt_sources(target: AttemptState) -> frozenset[AttemptState]:
    """Every attempt state from which ``target`` may follow: the guard of its update."""
    return frozenset(s for s, targets in ATTEMPT_MOVES.items() if target in targets)


def values(states: frozenset[ExecutionState] | frozenset[AttemptState]) -> list[str]:
    """The persisted values of ``states``, sorted (stable SQL)."""
    return sorted(s.value for s in states)
