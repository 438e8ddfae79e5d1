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
from fabflow.flows.model import CHOICE, Flow, StepDefinition
from fabflow.lifecycle.route import ChoiceLike, Hop, RouteError, choose, follow
from fabflow.lifecycle.transition import Decision
from fabflow.resources import steps_view
from fabflow.store.queue.records import Work

MAX_FLOWS = 1024  # flow versions whose choices are kept; past it the book starts afresh


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
        tuple(options.rules),
        options.otherwise,
        shown,
    )


class ChoiceBook:
    """The choices of the flow versions a worker runs, each made once: a flow version never
    changes, and the store keeps one ``Flow`` per version (so its identity is the key)."""

    def __init__(self) -> None:
        self._flows: dict[int, tuple[Flow, dict[str, _Choice]]] = {}

    def of(self, flow: Flow) -> dict[str, _Choice]:
        """The choices of ``flow``, by step id."""
        found = self._flows.get(id(flow))
        if found is None or found[0] is not flow:  # an id is reused once its flow is gone
            if len(self._flows) >= MAX_FLOWS:
                self._flows.clear()
            made = {s.step_definition_id: as_choice(s) for s in flow.steps if s.type == CHOICE}
            found = self._flows[id(flow)] = (flow, made)
        return found[1]


class Chooser:
    """Evaluates the choices of one claimed attempt's work, on its order and outputs."""

    def __init__(self, work: Work, outputs: dict[str, Any], book: ChoiceBook | None = None) -> None:
        self.work = work
        self.choices = (book or ChoiceBook()).of(work.flow)
        # One context for all the choices of this work: only ``step`` and ``error`` differ.
        self.context: dict[str, Any] = {
            "order": work.order,
            "steps": steps_view(outputs, work.order.get("files") or ()),
            "error": None,
            "step": {},
            "flow": work.flow_meta,
        }

    def choice_of(self, step_id: str) -> ChoiceLike | None:
        return self.choices.get(step_id)

    def test(self, choice: ChoiceLike, when: str, error: dict[str, Any] | None) -> bool:
        context = self.context
        context["error"] = error
        context["step"] = choice.step if isinstance(choice, _Choice) else {}
        try:
            return compile_expression(when)(context)
        except ExpressionError as exc:
            raise RouteError(f"{when!r}: {exc}") from exc

    def now(self, step: StepDefinition) -> Hop:
        """The claimed choice ``step``, evaluated."""
        choice = self.choices.get(step.step_definition_id) or as_choice(step)
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
        if decision.next is None or decision.next.step_id not in self.choices:
            return None
        return follow(decision, self.choice_of, self.test, time.perf_counter)
