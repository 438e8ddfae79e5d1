"""The operators' actions as decisions: when each is allowed, and what it asks the store to
write. Every execution state is tried for every action."""

from __future__ import annotations

import pytest

from fabflow.errors import Conflict, NotFound
from fabflow.lifecycle import actions
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import first_attempt

E = ExecutionState
STEPS = {"generate": "generate-production-files", "notify": "consume-rest-api"}

CANCEL = {E.PENDING: True, E.RUNNING: True, E.SUCCEEDED: False, E.FAILED: False}
CANCEL |= {E.CANCELLED: False, E.WAITING: True}
RETRY = {E.PENDING: False, E.RUNNING: False, E.SUCCEEDED: False, E.FAILED: True}
RETRY |= {E.CANCELLED: True, E.WAITING: False}
RERUN = {E.PENDING: False, E.RUNNING: False, E.SUCCEEDED: True, E.FAILED: True}
RERUN |= {E.CANCELLED: True, E.WAITING: False}


@pytest.mark.parametrize(("state", "allowed"), CANCEL.items(), ids=str)
def test_cancel(state: ExecutionState, allowed: bool) -> None:
    if not allowed:
        with pytest.raises(Conflict, match=f"cannot be cancelled: its execution is {state}"):
            actions.cancel("ord_1", state)
        return
    decision = actions.cancel("ord_1", state)
    assert decision.guard == {E.PENDING, E.RUNNING, E.WAITING}
    assert decision.attempts == {AttemptState.QUEUED, AttemptState.RUNNING, AttemptState.WAITING}
    assert decision.event == "cancelled"


@pytest.mark.parametrize(("state", "allowed"), RETRY.items(), ids=str)
def test_retry(state: ExecutionState, allowed: bool) -> None:
    if not allowed:
        with pytest.raises(Conflict):
            actions.retry("ord_1", state, "notify", STEPS)
        return
    decision = actions.retry("ord_1", state, "notify", STEPS)
    assert decision.first == first_attempt("notify")  # a new visit: a new idempotency key
    assert decision.step_type == "consume-rest-api"
    assert decision.guard == {E.SUCCEEDED, E.FAILED, E.CANCELLED}
    assert decision.event == "retried"


def test_retry_needs_a_step_that_did_not_succeed() -> None:
    with pytest.raises(Conflict, match="nothing to retry"):
        actions.retry("ord_1", E.FAILED, None, STEPS)


A = AttemptState
# (execution state, its newest attempt's state and number, allowed): only a queued retry.
RETRY_NOW: list[tuple[ExecutionState, AttemptState | None, int, bool]] = [
    (E.RUNNING, A.QUEUED, 2, True),
    (E.RUNNING, A.QUEUED, 8, True),
    (E.RUNNING, A.QUEUED, 1, False),  # a first attempt (a new step): nothing is failing
    (E.RUNNING, A.RUNNING, 2, False),  # the retry runs already
    (E.PENDING, A.QUEUED, 1, False),
    (E.WAITING, A.WAITING, 2, False),
    (E.SUCCEEDED, A.SUCCESS, 2, False),
    (E.FAILED, A.ERROR, 3, False),
    (E.CANCELLED, A.CANCELLED, 2, False),
    (E.RUNNING, None, 0, False),
]


@pytest.mark.parametrize(("state", "latest", "number", "allowed"), RETRY_NOW, ids=str)
def test_retry_now(
    state: ExecutionState, latest: AttemptState | None, number: int, allowed: bool
) -> None:
    if not allowed:
        with pytest.raises(Conflict, match="ord_1 has"):
            actions.retry_now("ord_1", state, latest, number)
        return
    decision = actions.retry_now("ord_1", state, latest, number)
    assert decision.guard == {A.QUEUED}  # claimed meanwhile: the update loses
    assert decision.event == "retry_now"


def test_retry_now_of_an_ended_order_points_at_retry() -> None:
    with pytest.raises(Conflict, match=r"has ended \(failed\): retry it"):
        actions.retry_now("ord_1", E.FAILED, A.ERROR, 3)


def test_every_execution_state_is_tried_for_retry_now() -> None:
    assert {row[0] for row in RETRY_NOW} == set(E)


@pytest.mark.parametrize(("state", "allowed"), RERUN.items(), ids=str)
def test_rerun(state: ExecutionState, allowed: bool) -> None:
    if not allowed:
        with pytest.raises(Conflict, match="still running: cancel it first"):
            actions.rerun("ord_1", state, "generate", STEPS)
        return
    decision = actions.rerun("ord_1", state, "generate", STEPS)
    assert decision.first == first_attempt("generate")
    assert decision.step_type == "generate-production-files"
    assert decision.event == "rerun"


@pytest.mark.parametrize("state", list(E), ids=str)
def test_rerun_of_a_step_the_flow_version_lacks(state: ExecutionState) -> None:
    with pytest.raises(NotFound, match="no step 'nope'"):
        actions.rerun("ord_1", state, "nope", STEPS)
