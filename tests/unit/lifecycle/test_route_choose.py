"""A choice evaluated as one step: its decision, whether the execution had an error or not
(a routed choice's decision is made once per status and target, and must not carry another
execution's error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fabflow.lifecycle.route import RouteError, choose, follow
from fabflow.lifecycle.states import AttemptState, ExecutionState
from fabflow.lifecycle.transition import Decision, NextAttempt


@dataclass
class Rule:
    when: str
    next: str


@dataclass
class Choice:
    step_definition_id: str = "route"
    success_status: str | None = None
    on_error: str | None = None
    rules: tuple[Rule, ...] = (Rule("yes", "a"),)
    otherwise: str = "b"


def _truth(when: str) -> bool:
    if when == "fails":
        raise RouteError("'order.data.x' is undefined")
    return when == "yes"


ERROR = {"stepDefinitionId": "s", "type": "http", "message": "503"}


@pytest.mark.parametrize(
    ("choice", "had_error", "context", "event", "state", "then", "status"),
    [
        (Choice(), False, None, "choice_routed", "success", ("a", None), None),
        (
            Choice(rules=(Rule("no", "a"),)),
            False,
            None,
            "choice_routed",
            "success",
            ("b", None),
            None,
        ),
        (
            Choice(success_status="Routed"),
            False,
            None,
            "choice_routed",
            "success",
            ("a", None),
            "Routed",
        ),
        # On an error path the next step is handed the error, routed or not.
        (Choice(), True, ERROR, "choice_routed", "success", ("a", ERROR), None),
        (Choice(), False, None, "choice_routed", "success", ("a", None), None),  # after that one
        (Choice(rules=(Rule("fails", "a"),)), False, None, "step_failed", "error", None, None),
        (
            Choice(rules=(Rule("fails", "a"),), on_error="fallback"),
            False,
            None,
            "step_failed",
            "error",
            ("fallback", "error context"),
            None,
        ),
    ],
)
def test_a_choice_decides_as_a_step(
    choice: Choice,
    had_error: bool,
    context: dict[str, Any] | None,
    event: str,
    state: str,
    then: tuple[str, Any] | None,
    status: str | None,
) -> None:
    hop = choose(choice, _truth, had_error=had_error, error_context=context, clock=lambda: 0.0)
    decision = hop.decision
    assert (decision.event, decision.attempt_state.value, decision.set_status) == (
        event,
        state,
        status,
    )
    if then is None:
        assert decision.next is None
        assert decision.execution_state is ExecutionState.FAILED
        return
    assert decision.next is not None
    assert decision.next.step_id == then[0]
    if then[1] == "error context":  # the choice's own failure
        assert decision.next.error_context == {
            "stepDefinitionId": "route",
            "type": "expression",
            "message": "'order.data.x' is undefined",
        }
    else:
        assert decision.next.error_context == then[1]
    assert decision.had_error is (had_error or then[1] == "error context")


def test_choices_in_a_row_are_followed_until_a_step() -> None:
    choices = {"c1": Choice("c1", rules=(Rule("yes", "c2"),)), "c2": Choice("c2")}
    start = Decision(
        AttemptState.SUCCESS,
        None,
        NextAttempt("c1", 1, 0.0, True),
        ExecutionState.RUNNING,
        False,
        "step_succeeded",
    )
    hops = follow(start, choices.get, lambda _c, when, _e: _truth(when), lambda: 0.0)
    assert [(h.step_id, h.route.next if h.route else None) for h in hops] == [
        ("c1", "c2"),
        ("c2", "a"),
    ]
