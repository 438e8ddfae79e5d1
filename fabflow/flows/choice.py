"""The ``choice`` step type: routes an order by its data, in the worker, with no I/O.

Its rules are tried in order; the first whose ``when`` is true names the next step, and
``otherwise`` names it when none is. See ``fabflow.flows.expressions`` for the language.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from fabflow.flows.expressions import ExpressionError, parse
from fabflow.flows.model import CHOICE, MAX_ID_LENGTH
from fabflow.flows.options import OptionsModel

__all__ = ["CHOICE", "ChoiceOptions", "ChoiceRule"]
MAX_RULES = 50


def _valid_expression(source: str) -> str:
    try:
        parse(source)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from exc
    return source


Expression = Annotated[str, AfterValidator(_valid_expression)]
StepId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class ChoiceRule(OptionsModel):
    """One branch: when ``when`` is true, the execution goes on at ``next``."""

    when: Expression = Field(
        description='An expression over the context, e.g. order.data.country == "BE".'
    )
    next: StepId = Field(description="The stepDefinitionId to go on at.")


class ChoiceOptions(OptionsModel):
    """Options of a choice step: rules tried in order, and where to go when none matches."""

    rules: list[ChoiceRule] = Field(
        min_length=1, max_length=MAX_RULES, description="Rules tried in order; the first true wins."
    )
    otherwise: StepId = Field(description="The stepDefinitionId to go on at when no rule matches.")
