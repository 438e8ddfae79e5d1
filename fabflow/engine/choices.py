"""Choices in the worker: evaluated on the order and outputs the worker already holds.

A choice claimed as an attempt (a flow's first step, the step after a wait, a rerun) is
evaluated when it starts; a choice that a step's transition leads to is evaluated in that
transition, and so are the choices that follow it (``fabflow.lifecycle.route``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fabflow.flows.choice import ChoiceOptions
from fabflow.flows.expressions import ExpressionError, compile_expression
from fabflow.flows.model import CHOICE, StepDefinition
from fabflow.lifecycle.route import ChoiceLike, Hop, RouteError, choose, follow
from fabflow.lifecycle.transition import Decision
from fabflow.resources import steps_view
from fabflow.store.queue.records import Work


@dataclass(frozen=True, slots=True)
class _Choice:
    """A choice step as routing reads it."""

    step_definition_id: str
    success_status: str | None
    on_error: str | None
    rules: Sequence[Any]
    otherwise: str
    step: dict[str, Any]  # ``step`` in its expressions' context


def as_choice(step: StepDefinition) -> _Choice:
    options = step.options
    assert isinstance(options, ChoiceOptions)
    shown = {"id": step.step_definition_id, "type": CHOICE, "successStatus": step.success_status}
    return _Choice(
        step.step_definition_id,
        step.success_status,
        step.on_error,
        options.rules,
        options.otherwise,
        shown,
    )


class Chooser:
    """Evaluates the choices of one claimed attempt's work, on its order and outputs."""

    def __init__(self, work: Work, outputs: dict[str, Any]) -> None:
        self.work = work
        self.steps = steps_view(outputs, work.order.get("files") or ())

    def choice_of(self, step_id: str) -> ChoiceLike | None:
        flow = self.work.flow
        return as_choice(flow.step(step_id)) if flow.is_choice(step_id) else None

    def test(self, choice: ChoiceLike, when: str, error: dict[str, Any] | None) -> bool:
        context = {
            "order": self.work.order,
            "steps": self.steps,
            "error": error,
            "step": choice.step if isinstance(choice, _Choice) else {},
            "flow": self.work.flow_meta,
        }
        try:
            return compile_expression(when)(context)
        except ExpressionError as exc:
            raise RouteError(f"{when!r}: {exc}") from exc

    def now(self, step: StepDefinition) -> Hop:
        """The claimed choice ``step``, evaluated."""
        choice = as_choice(step)
        claim = self.work.claim
        return choose(
            choice,
            lambda when: self.test(choice, when, claim.error_context),
            had_error=self.work.had_error,
            error_context=claim.error_context,
            clock=time.perf_counter,
        )

    def after(self, decision: Decision) -> list[Hop] | None:
        """The choices ``decision`` leads to, evaluated (None when it leads to none)."""
        if decision.next is None or not self.work.flow.is_choice(decision.next.step_id):
            return None
        return follow(decision, self.choice_of, self.test, time.perf_counter)
