"""The transition function: what happens after an attempt ends. Pure: data in, data out.

Given the flow's step, how the attempt ended and the execution so far, ``decide`` returns a
``Decision``: the attempt's final state, the order status to set, the next attempt to schedule
(a retry of the same visit, or the first attempt of the next step) and the execution's state.
The store applies a Decision in one guarded transaction.

The records here are values, never changed once made. They are not ``frozen``: the worker
makes several per step, and a frozen dataclass costs more to make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import AttemptState, ExecutionState, Outcome


class StepLike(Protocol):
    """What the transition function reads of a step definition."""

    @property
    def step_definition_id(self) -> str: ...
    @property
    def success_status(self) -> str | None: ...
    @property
    def on_success(self) -> str | None: ...
    @property
    def on_error(self) -> str | None: ...


@dataclass(slots=True)
class AttemptEnd:
    """How an attempt ended, as the worker saw it."""

    outcome: Outcome
    attempt: int  # 1-based number within the visit
    error_type: str | None = None
    error_message: str | None = None
    transient: bool = False
    retry_after: float | None = None
    waited: bool = False  # the end of a wait (callback, person, deadline): never retried
    status: str | None = None  # a success's status instead of the step's successStatus


@dataclass(slots=True)
class NextAttempt:
    """An attempt to schedule."""

    step_id: str
    attempt: int  # 1 for a new visit
    delay: float  # seconds from now
    new_visit: bool  # a new visit gets a new idempotency key; a retry keeps it
    error_context: dict[str, Any] | None = None


@dataclass(slots=True)
class Decision:
    attempt_state: AttemptState
    set_status: str | None
    next: NextAttempt | None
    execution_state: ExecutionState
    had_error: bool
    event: str  # the event kind recorded for this transition


def first_attempt(step_id: str) -> NextAttempt:
    """The attempt an execution starts with, or an operator's retry or rerun restarts from."""
    return NextAttempt(step_id, 1, 0.0, True)


def decide(
    step: StepLike,
    end: AttemptEnd,
    *,
    policy: RetryPolicy,
    had_error: bool,
    error_context: dict[str, Any] | None = None,
) -> Decision:
    """The transition after one attempt of ``step`` ended as ``end``.

    ``policy`` is the step's retry policy; ``had_error`` says whether an earlier step of this
    execution already ended in error; ``error_context`` is the error this step was handed
    (when it runs on an error path).
    """
    if end.outcome is Outcome.SUCCESS:
        return _on_success(step, had_error, error_context, end.status)
    if end.outcome is Outcome.WAIT:
        waiting = ExecutionState.WAITING
        return Decision(AttemptState.WAITING, None, None, waiting, had_error, "step_waiting")
    state = AttemptState.TIMEOUT if end.outcome is Outcome.TIMEOUT else AttemptState.ERROR
    retryable = (end.transient or end.outcome is Outcome.TIMEOUT) and not end.waited
    if retryable and policy.allows(end.attempt + 1):
        delay = policy.delay_before(end.attempt + 1, end.retry_after)
        retry = NextAttempt(step.step_definition_id, end.attempt + 1, delay, False, error_context)
        return Decision(state, None, retry, ExecutionState.RUNNING, had_error, "attempt_retry")
    return _on_step_error(step, end, state)


def step_missing() -> Decision:
    """The transition of an attempt whose step its flow version does not have: the execution
    fails, with no error path to take."""
    return Decision(AttemptState.ERROR, None, None, ExecutionState.FAILED, True, "step_failed")


def _on_success(
    step: StepLike, had_error: bool, error_context: dict[str, Any] | None, status: str | None
) -> Decision:
    status = status or step.success_status
    if step.on_success is None:
        final = ExecutionState.FAILED if had_error else ExecutionState.SUCCEEDED
        return Decision(AttemptState.SUCCESS, status, None, final, had_error, "step_succeeded")
    # The success path of an error handler still carries the error it handles.
    then = NextAttempt(step.on_success, 1, 0.0, True, error_context if had_error else None)
    running = ExecutionState.RUNNING
    return Decision(AttemptState.SUCCESS, status, then, running, had_error, "step_succeeded")


def _on_step_error(step: StepLike, end: AttemptEnd, state: AttemptState) -> Decision:
    context = {
        "stepDefinitionId": step.step_definition_id,
        "type": end.error_type or ("timeout" if end.outcome is Outcome.TIMEOUT else "error"),
        "message": end.error_message or "",
    }
    if step.on_error is None:
        return Decision(state, None, None, ExecutionState.FAILED, True, "step_failed")
    then = NextAttempt(step.on_error, 1, 0.0, True, context)
    return Decision(state, None, then, ExecutionState.RUNNING, True, "step_failed")
