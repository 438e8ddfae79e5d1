"""Resources: timestamps in ISO 8601 UTC with milliseconds (DESIGN section 5), and the run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fabflow.resources import iso, run_view


@pytest.mark.parametrize(
    "ts",
    [0.0, 1.5, 1700000000.123, 1700000000.9996, 1700000059.9999999, 1893456000.0, 4102444799.001],
)
def test_iso_agrees_with_datetime_to_the_millisecond(ts: float) -> None:
    whole_ms = int(ts * 1000)  # truncated, never rounded up into the next second
    expected = datetime.fromtimestamp(whole_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert iso(ts) == expected[:-3] + "Z"


def test_iso_of_nothing_is_none() -> None:
    assert iso(None) is None


def test_timestamps_of_many_seconds_stay_right_past_the_cache() -> None:
    start = 1700000000.25
    for i in range(10_000):  # more distinct seconds than the cache keeps
        assert iso(start + i) == datetime.fromtimestamp(start + i, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.250Z"
        )


FLOW = [
    {"stepDefinitionId": "make", "type": "generate-production-files", "onSuccess": "post"},
    {"stepDefinitionId": "post", "type": "consume-rest-api", "onError": "alert"},
    {"stepDefinitionId": "alert", "type": "send-email"},
]


def attempt(step: str, state: str, number: int = 1, visit: int = 1) -> dict[str, Any]:
    return {"step_id": step, "state": state, "attempt": number, "visit": visit, "details": {}}


@pytest.mark.parametrize(
    ("latest", "shown"),
    [
        (attempt("post", "queued", 1, 2), "queued"),  # its first attempt waits for a worker
        (attempt("post", "queued", 2, 2), "retrying"),  # a failed attempt's retry waits
        (attempt("post", "running", 2, 2), "running"),
        (attempt("post", "waiting", 1, 2), "waiting"),
        (attempt("post", "timeout", 1, 2), "failed"),
        (attempt("post", "cancelled", 1, 2), "cancelled"),
    ],
)
def test_a_steps_state_in_the_run_is_its_latest_attempts(
    latest: dict[str, Any], shown: str
) -> None:
    run = run_view(FLOW, [attempt("make", "success"), attempt("post", "error", 1, 2), latest])
    assert run["steps"] == [
        {"stepDefinitionId": "make", "state": "succeeded", "attempts": 1},
        {"stepDefinitionId": "post", "state": shown, "attempts": 2},
        {"stepDefinitionId": "alert", "state": "not_reached", "attempts": 0},
    ]
    assert run["path"] == [{"from": "make", "to": "post", "kind": "success"}]


def test_a_step_of_another_flow_version_is_left_out_of_the_run() -> None:
    tried = [attempt("old", "success"), attempt("make", "success", 1, 2)]
    run = run_view(FLOW, tried)
    assert [s["stepDefinitionId"] for s in run["steps"]] == ["make", "post", "alert"]
    assert run["path"] == []
