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
