"""Choices: where an execution goes after a step when the next step is a ``choice``.

A choice is no I/O: the worker evaluates it as part of the transition that leads to it, and
follows consecutive choices at once. Pure: the expressions are evaluated by ``test``, given by
the caller (the flow language compiles them), and the result is data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import Outcome
from fabflow.lifecycle.transition import AttemptEnd, Decision, decide

NO_RETRY = RetryPolicy(max_attempts=1)
MAX_HOPS = 1000  # choices in a row; a valid flow has no loop of choices, this is a backstop


class RuleLike(Protocol):
    @property
    def when(self) -> str: ...
    @property
    def next(self) -> str: ...


class ChoiceLike(Protocol):
    """What routing reads of a choice step."""

    @property
    def step_definition_id(self) -> str: ...
    @property
    def success_status(self) -> str | None: ...
    @property
    def on_error(self) -> str | None: ...
    @property
    def rules(self) -> Sequence[RuleLike]: ...
    @property
    def otherwise(self) -> str: ...


class RouteError(Exception):
    """An expression could not be evaluated (a path the order does not have ...)."""


# (the choice, an expression of it, the error context it was handed) -> its truth value
Test = Callable[["ChoiceLike", str, dict[str, Any] | None], bool]


@dataclass(slots=True)
class Route:
    """Where a choice sent the execution: the rule that matched (None: ``otherwise``)."""

    rule: int | None
    when: str | None
    next: str


def route(choice: ChoiceLike, test: Callable[[str], bool]) -> Route:
    """The first rule whose ``when`` is true, else ``otherwise``; ``RouteError`` when an
    expression fails."""
    for i, rule in enumerate(choice.rules):
        if test(rule.when):
            return Route(i, rule.when, rule.next)
    return Route(None, None, choice.otherwise)


@dataclass(slots=True)
class _Edges:
    """A choice seen by ``decide``: its success leads where the route goes."""

    step_definition_id: str
    success_status: str | None
    on_success: str | None
    on_error: str | None


@dataclass(slots=True)
class Hop:
    """One choice evaluated: its route (None when it failed), its decision, how long it took."""

    step_id: str
    route: Route | None
    decision: Decision
    error: str | None
    duration_ms: float
    error_context: dict[str, Any] | None


def choose(
    choice: ChoiceLike,
    test: Callable[[str], bool],
    *,
    had_error: bool,
    error_context: dict[str, Any] | None,
    clock: Callable[[], float],
) -> Hop:
    """Evaluate ``choice`` as one step: a route is its success, a failed expression its error
    (its ``onError``, else the execution fails)."""
    started = clock()
    step_id = choice.step_definition_id
    try:
        found: Route | None = route(choice, test)
        error = None
    except RouteError as exc:
        found, error = None, str(exc)
    target = found.next if found is not None else None
    edges = _Edges(step_id, choice.success_status, target, choice.on_error)
    if found is not None:
        end = AttemptEnd(Outcome.SUCCESS, 1)
    else:
        end = AttemptEnd(Outcome.ERROR, 1, "expression", error)
    decision = decide(edges, end, policy=NO_RETRY, had_error=had_error, error_context=error_context)
    decision.event = "choice_routed" if found is not None else "step_failed"
    return Hop(step_id, found, decision, error, (clock() - started) * 1000, error_context)


def follow(
    decision: Decision,
    choice_of: Callable[[str], ChoiceLike | None],
    test: Test,
    clock: Callable[[], float],
) -> list[Hop]:
    """The choices ``decision`` leads to, each evaluated in turn until the next step is not
    a choice (or the execution ends)."""
    hops: list[Hop] = []
    while decision.next is not None and len(hops) < MAX_HOPS:
        choice = choice_of(decision.next.step_id)
        if choice is None:
            break
        context = decision.next.error_context

        def evaluate(
            when: str, choice: ChoiceLike = choice, context: dict[str, Any] | None = context
        ) -> bool:
            return test(choice, when, context)

        hop = choose(
            choice, evaluate, had_error=decision.had_error, error_context=context, clock=clock
        )
        hops.append(hop)
        decision = hop.decision
    return hops
