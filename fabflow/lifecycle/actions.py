"""The operators' actions as decisions: cancel, retry, rerun from a step, and retry now.

Each function takes what the store read of the execution and returns what to write, with the
guard that write must hold (the execution still in one of ``guard``), or raises ``Conflict`` /
``NotFound`` with a message an operator can act on. The store applies the decision in one
guarded update and reports whether it won (a worker or another operator may move first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fabflow.errors import Conflict, NotFound
from fabflow.lifecycle.states import (
    ENDED_EXECUTION_STATES,
    OPEN_ATTEMPT_STATES,
    AttemptState,
    ExecutionState,
    execution_sources,
)
from fabflow.lifecycle.transition import NextAttempt, first_attempt

CANCELLABLE = execution_sources(ExecutionState.CANCELLED)  # pending, running
RESTARTABLE = execution_sources(ExecutionState.RUNNING) & ENDED_EXECUTION_STATES
RETRYABLE = frozenset({ExecutionState.FAILED, ExecutionState.CANCELLED})


@dataclass(frozen=True)
class Cancel:
    """End the execution as cancelled, and its open attempts with it (a running one loses
    its lease: its worker's result is refused)."""

    guard: frozenset[ExecutionState]
    attempts: frozenset[AttemptState]  # the attempt states that become cancelled
    event: str = "cancelled"


@dataclass(frozen=True)
class RetryNow:
    """Run the queued retry of a failing step now: what is left of its backoff is skipped.
    The same attempt (same idempotency key), only sooner."""

    guard: frozenset[AttemptState]  # the attempt must still be queued
    event: str = "retry_now"


@dataclass(frozen=True)
class Restart:
    """Start an ended execution again at ``first.step_id``: a new visit, a new idempotency
    key, the whole history kept."""

    first: NextAttempt
    step_type: str
    guard: frozenset[ExecutionState]
    event: str  # "retried" or "rerun"


def cancel(order_id: str, state: ExecutionState) -> Cancel:
    if state not in CANCELLABLE:
        raise Conflict(f"order {order_id} cannot be cancelled: its execution is {state}")
    return Cancel(CANCELLABLE, OPEN_ATTEMPT_STATES)


def retry_now(
    order_id: str, state: ExecutionState, latest: AttemptState | None, attempt: int
) -> RetryNow:
    """Skip the backoff before the next attempt of a failing step. ``latest`` is the state of
    the execution's newest attempt and ``attempt`` its number in its visit: a queued attempt
    after the first is a retry (only an attempt that failed is retried)."""
    if state is ExecutionState.RUNNING and latest is AttemptState.QUEUED and attempt > 1:
        return RetryNow(frozenset({AttemptState.QUEUED}))
    if state in RETRYABLE:
        raise Conflict(f"order {order_id} has ended ({state}): retry it to run its step again")
    raise Conflict(f"order {order_id} has no retry waiting to run: its execution is {state}")


def retry(
    order_id: str, state: ExecutionState, failed_step: str | None, steps: Mapping[str, str]
) -> Restart:
    """Re-run the step that did not succeed (``failed_step``, the latest such attempt's),
    then continue. ``steps`` maps the execution's flow version's step ids to their types."""
    if state not in RETRYABLE or failed_step is None:
        raise Conflict(f"order {order_id} has nothing to retry: its execution is {state}")
    return _restart(order_id, state, failed_step, steps, "retried")


def rerun(order_id: str, state: ExecutionState, step_id: str, steps: Mapping[str, str]) -> Restart:
    """Run the execution again from ``step_id``, which its flow version must have."""
    return _restart(order_id, state, step_id, steps, "rerun")


def _restart(
    order_id: str, state: ExecutionState, step_id: str, steps: Mapping[str, str], event: str
) -> Restart:
    if step_id not in steps:
        raise NotFound(f"the order's flow version has no step {step_id!r}")
    if state not in RESTARTABLE:
        raise Conflict(f"order {order_id} is still running: cancel it first or wait for it to end")
    return Restart(first_attempt(step_id), steps[step_id], RESTARTABLE, event)
