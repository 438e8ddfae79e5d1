"""The lifecycle's table of moves: every allowed and every refused one, spelled out.

A change to what may follow what changes this table: that is the point. The store's guarded
updates are built from the same table (``execution_sources``/``attempt_sources``).
"""

from __future__ import annotations

import itertools

import pytest

from fabflow.lifecycle.states import (
    AttemptState,
    ExecutionState,
    attempt_may_move,
    attempt_sources,
    execution_may_move,
    execution_sources,
)

E, A = ExecutionState, AttemptState

EXECUTION_ALLOWED = {
    (E.PENDING, E.RUNNING),  # the first attempt is claimed
    (E.PENDING, E.CANCELLED),  # an operator cancels before any worker ran it
    (E.RUNNING, E.RUNNING),  # a step ended and the next one (or a retry) is scheduled
    (E.RUNNING, E.SUCCEEDED),  # the last step succeeded, no step ended in error
    (E.RUNNING, E.FAILED),  # a step ended in error (with or without an error path run)
    (E.RUNNING, E.CANCELLED),  # an operator cancels
    (E.RUNNING, E.WAITING),  # a step waits on a callback or a person
    (E.WAITING, E.RUNNING),  # the wait resolved, the next step queued (or its deadline passed)
    (E.WAITING, E.SUCCEEDED),  # the wait resolved as a success, the last step
    (E.WAITING, E.FAILED),  # resolved as an error (callback error, rejection), no error path
    (E.WAITING, E.CANCELLED),  # an operator cancels while it waits
    (E.SUCCEEDED, E.RUNNING),  # rerun from a step
    (E.FAILED, E.RUNNING),  # retry, or rerun from a step
    (E.CANCELLED, E.RUNNING),  # retry, or rerun from a step
}

ATTEMPT_ALLOWED = {
    (A.QUEUED, A.RUNNING),  # claimed
    (A.QUEUED, A.CANCELLED),  # its execution was cancelled
    (A.RUNNING, A.SUCCESS),
    (A.RUNNING, A.ERROR),
    (A.RUNNING, A.TIMEOUT),
    (A.RUNNING, A.CANCELLED),  # its execution was cancelled while it ran
    (A.RUNNING, A.QUEUED),  # released by a draining worker, or given back
    (A.RUNNING, A.RUNNING),  # taken over after its lease expired
    (A.RUNNING, A.WAITING),  # its step started a wait
    (A.WAITING, A.SUCCESS),  # a callback or a confirmation
    (A.WAITING, A.ERROR),  # a callback's error, a rejection
    (A.WAITING, A.TIMEOUT),  # (through running) its deadline passed
    (A.WAITING, A.CANCELLED),  # its execution was cancelled
    (A.WAITING, A.RUNNING),  # claimed by a worker once past its deadline, to be timed out
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(E, E)), ids=lambda s: str(s))
def test_execution_moves(source: ExecutionState, target: ExecutionState) -> None:
    assert execution_may_move(source, target) == ((source, target) in EXECUTION_ALLOWED)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(A, A)), ids=lambda s: str(s))
def test_attempt_moves(source: AttemptState, target: AttemptState) -> None:
    assert attempt_may_move(source, target) == ((source, target) in ATTEMPT_ALLOWED)


def test_ended_states_end() -> None:
    assert {s for s in E if s.ended} == {E.SUCCEEDED, E.FAILED, E.CANCELLED}
    assert {s for s in A if s.ended} == {A.SUCCESS, A.ERROR, A.TIMEOUT, A.CANCELLED}
    assert not E.WAITING.ended and not A.WAITING.ended
    for state in (A.SUCCESS, A.ERROR, A.TIMEOUT, A.CANCELLED):
        assert not any(attempt_may_move(state, t) for t in A), f"{state} is final"


def test_guards_are_the_sources_of_the_table() -> None:
    assert execution_sources(E.CANCELLED) == {E.PENDING, E.RUNNING, E.WAITING}
    assert execution_sources(E.SUCCEEDED) == {E.RUNNING, E.WAITING}
    assert attempt_sources(A.SUCCESS) == {A.RUNNING, A.WAITING}
    assert attempt_sources(A.QUEUED) == {A.RUNNING}
    assert attempt_sources(A.WAITING) == {A.RUNNING}


def test_persisted_values_never_change() -> None:
    assert [s.value for s in E] == [
        "pending",
        "running",
        "waiting",
        "succeeded",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in A] == [
        "queued",
        "running",
        "waiting",
        "success",
        "error",
        "timeout",
        "cancelled",
    ]
