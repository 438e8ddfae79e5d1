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
    return _route(choice, lambda _choice, when, _context: test(when), None)


def _route(choice: ChoiceLike, test: Test, context: dict[str, Any] | None) -> Route:
    for i, rule in enumerate(choice.rules):
        if test(choice, rule.when, context):
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
    return _choose(
        choice, lambda _choice, when, _context: test(when), had_error, error_context, clock
    )


def _choose(
    choice: ChoiceLike,
    test: Test,
    had_error: bool,
    error_context: dict[str, Any] | None,
    clock: Callable[[], float],
) -> Hop:
    started = clock()
    step_id = choice.step_definition_id
    try:
        found: Route | None = _route(choice, test, error_context)
        error = None
    except RouteError as exc:
        found, error = None, str(exc)
    if found is not None and not had_error:
        decision = _routed(choice.success_status, found.next)
    else:
        target = found.next if found is not None else None
        edges = _Edges(step_id, choice.success_status, target, choice.on_error)
        decision = _decided(edges, error, had_error, error_context)
    return Hop(step_id, found, decision, error, (clock() - started) * 1000, error_context)


def _decided(
    edges: _Edges, error: str | None, had_error: bool, error_context: dict[str, Any] | None
) -> Decision:
    """The decision of a choice that routed (``edges.on_success`` set) or failed."""
    found = edges.on_success is not None
    if found:
        end = AttemptEnd(Outcome.SUCCESS, 1)
    else:
        end = AttemptEnd(Outcome.ERROR, 1, "expression", error)
    decision = decide(edges, end, policy=NO_RETRY, had_error=had_error, error_context=error_context)
    decision.event = "choice_routed" if found else "step_failed"
    return decision


# The decision of a choice that routed an execution with no error so far depends on its status
# and target alone: made once each (decisions are values, never changed once made).
_ROUTED: dict[tuple[str | None, str], Decision] = {}
_MAX_ROUTED = 4096


def _routed(status: str | None, target: str) -> Decision:
    decision = _ROUTED.get((status, target))
    if decision is None:
        if len(_ROUTED) >= _MAX_ROUTED:
            _ROUTED.clear()
        decision = _decided(_Edges("", status, target, None), None, False, None)
        _ROUTED[(status, target)] = decision
    return decision


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
        hop = _choose(choice, test, decision.had_error, decision.next.error_context, clock)
        hops.append(hop)
        decision = hop.decision
    return hops
