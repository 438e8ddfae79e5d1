"""An order's health, row by row: which executions are unhealthy, with what reason and time."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.lifecycle.health import HEALTHY, Health, HealthState, order_health
from fabflow.lifecycle.states import ExecutionState

CREATED = 1_796_400_000.0  # 2026-12-04T16:00:00Z
NOW = CREATED + 3600  # an hour later
ERROR_500 = "http://mes.example/orders answered HTTP 500"


def attempt(state: str, number: int = 1, visit: int = 1, **more: Any) -> dict[str, Any]:
    row = {
        "state": state,
        "attempt": number,
        "visit": visit,
        "run_after": CREATED,
        "started_at": CREATED if state != "queued" else None,
        "wait_until": None,
        "error_type": None,
        "error_message": None,
    }
    return row | more


def failed(number: int, visit: int = 1, message: str = ERROR_500) -> dict[str, Any]:
    return attempt("error", number, visit, error_type="http_status", error_message=message)


UNHEALTHY = HealthState.UNHEALTHY
RETRY_AT = NOW + 60  # 2026-12-04T17:01:00Z
# (id, execution state, attempts, flow deadline in ms, expected health)
CASES: list[tuple[str, str, list[dict[str, Any]], float | None, Health]] = [
    ("pending", "pending", [attempt("queued")], None, HEALTHY),
    ("first-attempt-running", "running", [attempt("running")], None, HEALTHY),
    (
        "next-step-after-a-success",
        "running",
        [attempt("success"), attempt("queued", visit=2)],
        None,
        HEALTHY,
    ),
    (
        "error-path-step-runs",  # a new visit after an error: the flow handles it
        "running",
        [failed(1), attempt("running", visit=2)],
        None,
        HEALTHY,
    ),
    (
        "retry-queued",
        "running",
        [failed(1), failed(2), failed(3), failed(4), attempt("queued", 5, run_after=RETRY_AT)],
        None,
        Health(
            UNHEALTHY,
            f"retrying: attempt 5 of 8, next at 2026-12-04T17:01:00.000Z, last error: {ERROR_500}",
            RETRY_AT,
        ),
    ),
    (
        "retry-running",
        "running",
        [failed(1), attempt("running", 2, started_at=NOW - 1)],
        None,
        Health(
            UNHEALTHY,
            "retrying: attempt 2 of 8 running since 2026-12-04T16:59:59.000Z,"
            f" last error: {ERROR_500}",
        ),
    ),
    (
        "retry-after-a-timeout",
        "running",
        [attempt("timeout", error_type="timeout"), attempt("queued", 2, run_after=RETRY_AT)],
        None,
        Health(
            UNHEALTHY,
            "retrying: attempt 2 of 8, next at 2026-12-04T17:01:00.000Z, last error: timeout",
            RETRY_AT,
        ),
    ),
    ("retry-succeeded", "succeeded", [failed(1), attempt("success", 2)], None, HEALTHY),
    ("retries-exhausted", "failed", [failed(1), failed(2), failed(3)], None, HEALTHY),
    ("waiting", "waiting", [attempt("waiting", wait_until=NOW + 1)], None, HEALTHY),
    (
        "waiting-past-its-deadline",
        "waiting",
        [attempt("waiting", wait_until=NOW - 30)],
        None,
        Health(UNHEALTHY, "waiting past its deadline since 2026-12-04T16:59:30.000Z"),
    ),
    ("within-the-flow-deadline", "running", [attempt("running")], 3_600_001, HEALTHY),
    (
        "past-the-flow-deadline",
        "waiting",
        [attempt("waiting", wait_until=NOW + 1)],
        3_600_000,
        Health(UNHEALTHY, "past the flow's deadline since 2026-12-04T17:00:00.000Z"),
    ),
    ("ended-past-the-flow-deadline", "succeeded", [attempt("success")], 1000, HEALTHY),
    ("cancelled-during-a-retry", "cancelled", [failed(1), attempt("cancelled", 2)], 1, HEALTHY),
    (
        "retrying-and-past-the-flow-deadline",
        "running",
        [failed(1), attempt("queued", 2, run_after=RETRY_AT)],
        60_000,
        Health(
            UNHEALTHY,
            "retrying: attempt 2 of 8, next at 2026-12-04T17:01:00.000Z,"
            f" last error: {ERROR_500}; past the flow's deadline since 2026-12-04T16:01:00.000Z",
            RETRY_AT,
        ),
    ),
]


@pytest.mark.parametrize(
    ("state", "attempts", "deadline", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_health(
    state: str, attempts: list[dict[str, Any]], deadline: float | None, expected: Health
) -> None:
    found = order_health(
        state, attempts, max_attempts=8, created_at=CREATED, deadline_ms=deadline, now=NOW
    )
    assert found == expected


def test_every_execution_state_is_in_the_table() -> None:
    assert {c[1] for c in CASES} == {s.value for s in ExecutionState}


def test_an_attempt_number_never_exceeds_its_total() -> None:
    # The settings' default can shrink after a retry was queued: attempt 5 of 3 would confuse.
    attempts = [failed(n) for n in range(1, 5)] + [attempt("queued", 5, run_after=RETRY_AT)]
    found = order_health(
        "running", attempts, max_attempts=3, created_at=CREATED, deadline_ms=None, now=NOW
    )
    assert found.reason is not None and found.reason.startswith("retrying: attempt 5 of 5,")


def test_as_json() -> None:
    health = Health(UNHEALTHY, "retrying", RETRY_AT)
    assert health.as_json() == {
        "state": "unhealthy",
        "reason": "retrying",
        "nextAttemptAt": "2026-12-04T17:01:00.000Z",
    }
    assert HEALTHY.as_json() == {"state": "healthy", "reason": None, "nextAttemptAt": None}
