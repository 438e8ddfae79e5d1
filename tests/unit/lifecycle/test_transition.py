"""The transition function, row by row: what happens after an attempt ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fabflow.flows.model import RetryOptions
from fabflow.flows.validate import parse_flow
from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import AttemptState, ExecutionState, Outcome
from fabflow.lifecycle.transition import AttemptEnd, Decision, NextAttempt, decide, step_missing

DEFAULT = RetryPolicy(max_attempts=3, initial_delay=1.0, backoff=2.0, max_delay=60.0)


@dataclass(frozen=True)
class Step:
    step_definition_id: str
    success_status: str = "ok"
    on_success: str | None = None
    on_error: str | None = None
    retry: Any = None


def policy_of(step: Any) -> RetryPolicy:
    """The step's policy as the flow model converts it: its retry extension, or the default."""
    retry = getattr(step, "retry", None)
    if retry is None:
        return DEFAULT
    return RetryOptions.model_validate(retry).policy() if isinstance(retry, dict) else DEFAULT


def run(step: Any, end: AttemptEnd, **kw: Any) -> Decision:
    return decide(step, end, policy=policy_of(step), **kw)


ERR = {"stepDefinitionId": "a", "type": "http_status", "message": "HTTP 400"}

CASES = [
    # (name, step, end, had_error, expected attempt state, status, next, execution state)
    (
        "success chains to onSuccess",
        Step("a", "Sent", on_success="b"),
        AttemptEnd(Outcome.SUCCESS, 1),
        False,
        AttemptState.SUCCESS,
        "Sent",
        NextAttempt("b", 1, 0.0, True, None),
        ExecutionState.RUNNING,
    ),
    (
        "success without onSuccess ends the execution as succeeded",
        Step("a", "Done"),
        AttemptEnd(Outcome.SUCCESS, 1),
        False,
        AttemptState.SUCCESS,
        "Done",
        None,
        ExecutionState.SUCCEEDED,
    ),
    (
        "the last step of an error path ends the execution as failed",
        Step("error", "Failed"),
        AttemptEnd(Outcome.SUCCESS, 1),
        True,
        AttemptState.SUCCESS,
        "Failed",
        None,
        ExecutionState.FAILED,
    ),
    (
        "a permanent error routes to onError with the error context",
        Step("a", on_error="error"),
        AttemptEnd(Outcome.ERROR, 1, "http_status", "HTTP 400", transient=False),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt("error", 1, 0.0, True, ERR),
        ExecutionState.RUNNING,
    ),
    (
        "a permanent error without onError ends the execution as failed",
        Step("a"),
        AttemptEnd(Outcome.ERROR, 1, "http_status", "HTTP 400"),
        False,
        AttemptState.ERROR,
        None,
        None,
        ExecutionState.FAILED,
    ),
    (
        "a transient error is retried after the initial delay, same visit",
        Step("a", on_error="error"),
        AttemptEnd(Outcome.ERROR, 1, "connection", "refused", transient=True),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt("a", 2, 1.0, False, None),
        ExecutionState.RUNNING,
    ),
    (
        "the second retry waits backoff times longer",
        Step("a", on_error="error"),
        AttemptEnd(Outcome.ERROR, 2, "http_status", "HTTP 503", transient=True),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt("a", 3, 2.0, False, None),
        ExecutionState.RUNNING,
    ),
    (
        "a transient error after the last attempt takes the error path",
        Step("a", on_error="error"),
        AttemptEnd(Outcome.ERROR, 3, "http_status", "HTTP 503", transient=True),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt(
            "error",
            1,
            0.0,
            True,
            {"stepDefinitionId": "a", "type": "http_status", "message": "HTTP 503"},
        ),
        ExecutionState.RUNNING,
    ),
    (
        "Retry-After longer than the backoff is honoured",
        Step("a"),
        AttemptEnd(Outcome.ERROR, 1, "http_status", "HTTP 429", transient=True, retry_after=7.0),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt("a", 2, 7.0, False, None),
        ExecutionState.RUNNING,
    ),
    (
        "a timeout is an error that is retried",
        Step("a", on_error="error"),
        AttemptEnd(Outcome.TIMEOUT, 1, "timeout", "too slow"),
        False,
        AttemptState.TIMEOUT,
        None,
        NextAttempt("a", 2, 1.0, False, None),
        ExecutionState.RUNNING,
    ),
    (
        "a timeout on the last attempt takes the error path with type timeout",
        Step("a", on_error="error", retry={"maxAttempts": 1}),
        AttemptEnd(Outcome.TIMEOUT, 1, None, "too slow"),
        False,
        AttemptState.TIMEOUT,
        None,
        NextAttempt(
            "error",
            1,
            0.0,
            True,
            {"stepDefinitionId": "a", "type": "timeout", "message": "too slow"},
        ),
        ExecutionState.RUNNING,
    ),
    (
        "the retry extension overrides the default policy",
        Step("a", retry={"maxAttempts": 5, "initialDelay": 100, "backoff": 3, "maxDelay": 500}),
        AttemptEnd(Outcome.ERROR, 3, "connection", "refused", transient=True),
        False,
        AttemptState.ERROR,
        None,
        NextAttempt("a", 4, 0.5, False, None),  # 100 ms * 3**2 = 900 ms, capped at 500 ms
        ExecutionState.RUNNING,
    ),
    (
        "maxAttempts 1 means no retry even for a transient error",
        Step("a", retry={"maxAttempts": 1}),
        AttemptEnd(Outcome.ERROR, 1, "connection", "refused", transient=True),
        False,
        AttemptState.ERROR,
        None,
        None,
        ExecutionState.FAILED,
    ),
    (
        "an error on the error path without its own onError ends as failed",
        Step("error", "Failed"),
        AttemptEnd(Outcome.ERROR, 1, "smtp", "550 rejected"),
        True,
        AttemptState.ERROR,
        None,
        None,
        ExecutionState.FAILED,
    ),
]


@pytest.mark.parametrize(
    ("name", "step", "end", "had_error", "attempt_state", "status", "nxt", "execution_state"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_transition(
    name: str,
    step: Step,
    end: AttemptEnd,
    had_error: bool,
    attempt_state: AttemptState,
    status: str | None,
    nxt: NextAttempt | None,
    execution_state: ExecutionState,
) -> None:
    decision = run(step, end, had_error=had_error)
    assert decision.attempt_state is attempt_state
    assert decision.set_status == status
    assert decision.next == nxt
    assert decision.execution_state is execution_state


def test_status_is_set_only_on_success() -> None:
    for outcome in (Outcome.ERROR, Outcome.TIMEOUT):
        decision = run(Step("a", "Never"), AttemptEnd(outcome, 9), had_error=False)
        assert decision.set_status is None


def test_error_path_success_chain_keeps_the_error_context() -> None:
    handler = Step("notify", "Failed", on_success="cleanup")
    decision = run(
        handler,
        AttemptEnd(Outcome.SUCCESS, 1),
        had_error=True,
        error_context=ERR,
    )
    assert decision.next == NextAttempt("cleanup", 1, 0.0, True, ERR)
    assert decision.had_error


def test_retry_keeps_the_error_context_of_an_error_path_step() -> None:
    decision = run(
        Step("notify"),
        AttemptEnd(Outcome.ERROR, 1, "smtp", "421 busy", transient=True),
        had_error=True,
        error_context=ERR,
    )
    assert decision.next is not None and decision.next.error_context == ERR


def test_real_flow_model_drives_the_transition() -> None:
    flow = parse_flow(
        [
            {
                "stepDefinitionId": "consume",
                "type": "consume-rest-api",
                "successStatus": "Sent",
                "options": {"uri": "https://erp.example.com/orders"},
                "onSuccess": "email",
                "onError": "error",
                "retry": {"maxAttempts": 2, "initialDelay": 250},
            },
            {
                "stepDefinitionId": "email",
                "type": "send-email",
                "successStatus": "Success",
                "options": {"recipients": ["ops@example.com"], "subject": "s", "message": "m"},
            },
            {
                "stepDefinitionId": "error",
                "type": "send-email",
                "successStatus": "Failed",
                "options": {"recipients": ["ops@example.com"], "subject": "s", "message": "m"},
            },
        ]
    )
    step = flow.step("consume")
    policy = step.retry_policy(DEFAULT)
    first = decide(
        step, AttemptEnd(Outcome.ERROR, 1, "connection", "x", True), policy=policy, had_error=False
    )
    assert first.next == NextAttempt("consume", 2, 0.25, False, None)
    second = decide(
        step, AttemptEnd(Outcome.ERROR, 2, "connection", "x", True), policy=policy, had_error=False
    )
    assert second.next is not None and second.next.step_id == "error"


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (2, None, 1.0),
        (3, None, 2.0),
        (4, None, 4.0),
        (10, None, 60.0),
        (2, 30.0, 30.0),
        (2, 99999.0, 3600.0),
    ],
)
def test_default_policy_delays(attempt: int, retry_after: float | None, expected: float) -> None:
    assert DEFAULT.delay_before(attempt, retry_after) == expected


def test_a_step_its_flow_version_lacks_fails_the_execution() -> None:
    decision = step_missing()
    assert decision.attempt_state is AttemptState.ERROR
    assert decision.next is None and decision.execution_state is ExecutionState.FAILED


def test_a_step_that_starts_a_wait_parks_the_execution() -> None:
    decision = run(Step("post", on_success="email"), AttemptEnd(Outcome.WAIT, 1), had_error=False)
    assert decision.attempt_state is AttemptState.WAITING
    assert decision.execution_state is ExecutionState.WAITING
    assert decision.next is None and decision.set_status is None
    assert decision.event == "step_waiting"


@pytest.mark.parametrize(
    ("end", "attempt_state", "then", "state", "status"),
    [
        (  # a callback's success continues on onSuccess with the callback's status
            AttemptEnd(Outcome.SUCCESS, 1, waited=True, status="Printed"),
            AttemptState.SUCCESS,
            "email",
            ExecutionState.RUNNING,
            "Printed",
        ),
        (  # a confirmation: the step's own successStatus
            AttemptEnd(Outcome.SUCCESS, 1, waited=True),
            AttemptState.SUCCESS,
            "email",
            ExecutionState.RUNNING,
            "Accepted",
        ),
        (  # a callback's error or a rejection takes onError, never retried
            AttemptEnd(Outcome.ERROR, 1, "rejected", "too big", transient=True, waited=True),
            AttemptState.ERROR,
            "error",
            ExecutionState.RUNNING,
            None,
        ),
        (  # the wait's deadline: onError with type timeout, never retried
            AttemptEnd(Outcome.TIMEOUT, 1, "timeout", "no callback", waited=True),
            AttemptState.TIMEOUT,
            "error",
            ExecutionState.RUNNING,
            None,
        ),
    ],
    ids=["callback success", "confirm", "reject", "wait timeout"],
)
def test_a_resolved_wait_ends_its_step(
    end: AttemptEnd,
    attempt_state: AttemptState,
    then: str,
    state: ExecutionState,
    status: str | None,
) -> None:
    step = Step("post", "Accepted", on_success="email", on_error="error")
    decision = run(step, end, had_error=False)
    assert decision.attempt_state is attempt_state
    assert decision.next is not None and decision.next.step_id == then
    assert decision.next.attempt == 1 and decision.next.new_visit
    assert decision.execution_state is state
    assert decision.set_status == status
