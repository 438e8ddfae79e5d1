"""An order's health: whether its execution is making progress, and if not, why.

An execution that has not ended is **unhealthy** while

- a step is failing and being retried: its newest attempt is a retry (attempt 2 or later of
  its visit, each made only after the attempt before it ended in a transient error or a
  timeout) that is queued or running;
- a wait (a callback, a person) is past its deadline, not yet timed out by a worker;
- the flow's own deadline (ms from the order's creation) has passed.

An ended execution is healthy: ``failed`` or ``cancelled`` says what happened to it. Pure:
the store reads the rows and feeds them in; ``fabflow.store.orders.read`` says the same in SQL
for the list's filter and counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.resources import iso

# The attempt states of a retry in progress: waiting out its backoff, or running.
RETRYING_ATTEMPT_STATES = frozenset({AttemptState.QUEUED, AttemptState.RUNNING})
_FAILED = frozenset({AttemptState.ERROR, AttemptState.TIMEOUT})


class HealthState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState
    reason: str | None = None  # why it is unhealthy, for a person to read
    next_attempt_at: float | None = None  # a queued retry's time (UNIX seconds)

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "nextAttemptAt": iso(self.next_attempt_at),
        }


HEALTHY = Health(HealthState.HEALTHY)


def order_health(
    execution_state: str,
    attempts: Sequence[Mapping[str, Any]],
    *,
    max_attempts: int,
    created_at: float,
    deadline_ms: float | None,
    now: float,
) -> Health:
    """The health of an execution in ``execution_state`` whose attempts are ``attempts``
    (rows with ``state``, ``attempt``, ``visit``, ``run_after``, ``started_at``,
    ``wait_until``, ``error_type`` and ``error_message``; oldest first). ``max_attempts`` is
    the retry policy's of the newest attempt's step; ``deadline_ms`` the flow's, if any."""
    if ExecutionState(execution_state).ended:
        return HEALTHY
    reasons: list[str] = []
    next_at = None
    latest = attempts[-1] if attempts else None
    if latest is not None and latest["attempt"] > 1 and latest["state"] in RETRYING_ATTEMPT_STATES:
        previous = attempts[-2] if len(attempts) > 1 else None
        reason, next_at = _retrying(latest, previous, max_attempts)
        reasons.append(reason)
    if latest is not None and latest["state"] == AttemptState.WAITING:
        until = latest["wait_until"]
        if until is not None and until <= now:
            reasons.append(f"waiting past its deadline since {iso(until)}")
    if deadline_ms is not None and created_at + deadline_ms / 1000 <= now:
        reasons.append(f"past the flow's deadline since {iso(created_at + deadline_ms / 1000)}")
    if not reasons:
        return HEALTHY
    return Health(HealthState.UNHEALTHY, "; ".join(reasons), next_at)


def _retrying(
    latest: Mapping[str, Any], previous: Mapping[str, Any] | None, max_attempts: int
) -> tuple[str, float | None]:
    """The reason of a retry in progress, and the time of the queued one."""
    of = f"attempt {latest['attempt']} of {max(max_attempts, latest['attempt'])}"
    if latest["state"] == AttemptState.QUEUED:
        reason, next_at = f"retrying: {of}, next at {iso(latest['run_after'])}", latest["run_after"]
    else:
        reason, next_at = f"retrying: {of} running since {iso(latest['started_at'])}", None
    error = _error_of(previous) if previous is not None else None
    if error is not None and previous is not None and previous["visit"] == latest["visit"]:
        reason += f", last error: {error}"
    return reason, next_at


def _error_of(attempt: Mapping[str, Any]) -> str | None:
    if attempt["state"] not in _FAILED:
        return None
    return str(attempt["error_message"] or attempt["error_type"] or attempt["state"])
