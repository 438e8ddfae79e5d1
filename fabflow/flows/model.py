"""Typed, frozen models of a flow and its step definitions.

The JSON keys are the spec's camelCase (aliases); Python code uses the snake_case attributes.
``StepDefinition`` is both the wire model the validator checks a step against and what the
engine reads, so the JSON Schema and the runtime cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic import field_validator as _field_validator
from pydantic.alias_generators import to_camel

from fabflow.flows.expressions import ExpressionError, parse
from fabflow.flows.references import references
from fabflow.lifecycle.retry import RetryPolicy, default_for

CHOICE = "choice"  # the step type that routes in the worker (see ``fabflow.flows.choice``)
MAX_ID_LENGTH = 200
MAX_STATUS_LENGTH = 200
# 30 days: longer deadlines are typos, and they would overflow date arithmetic downstream.
MAX_DURATION_MS = 30 * 24 * 3600 * 1000
# A year: an order may take months to make, but not longer.
MAX_FLOW_DEADLINE_MS = 365 * 24 * 3600 * 1000

_CONFIG = ConfigDict(
    alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True
)


class RetryOptions(BaseModel):
    """*Extension*: how often and how fast a failed attempt is tried again (milliseconds).

    The delay before attempt ``n + 1`` is ``initialDelay * backoff ** (n - 1)``, capped at
    ``maxDelay``. An integer is shorthand for ``{"maxAttempts": n}``.
    """

    model_config = _CONFIG

    max_attempts: int = Field(ge=1, le=100, description="Attempts in all, the first included.")
    initial_delay: float = Field(
        default=1000, ge=0, le=MAX_DURATION_MS, description="Milliseconds before the 2nd attempt."
    )
    backoff: float = Field(default=2.0, ge=1, le=100, description="Factor applied to each delay.")
    max_delay: float = Field(
        default=60_000, ge=0, le=MAX_DURATION_MS, description="Upper bound of any delay (ms)."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `"retry": 5` reads better than `{"maxAttempts": 5}` for the common case.
        if isinstance(data, int) and not isinstance(data, bool):
            return {"maxAttempts": data}
        if isinstance(data, dict) and "maxDelay" not in data and "max_delay" not in data:
            # A long initialDelay with no maxDelay means delays of at least that long: the
            # default cap (60 s) must not be below it, or the flow written back would not load.
            initial = data.get("initialDelay", data.get("initial_delay"))
            if isinstance(initial, int | float) and not isinstance(initial, bool):
                return {**data, "maxDelay": max(float(initial), 60_000.0)}
        return data

    @_field_validator("max_delay")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("initial_delay")
        if initial is not None and value < initial:
            raise ValueError(f"must be at least initialDelay ({initial:g} ms)")
        return value

    def policy(self) -> RetryPolicy:
        """The lifecycle's retry policy these options describe."""
        return RetryPolicy.from_ms(
            self.max_attempts, self.initial_delay, self.backoff, self.max_delay
        )


def _retry_shorthand_schema(schema: dict[str, Any]) -> None:
    # The shorthand is accepted by a "before" validator, which the generated schema cannot see.
    schema["anyOf"].insert(1, {"type": "integer", "minimum": 1, "maximum": 100})


class StepDefinition(BaseModel):
    """One step of a flow, exactly the spec's keys plus the ``retry`` extension.

    ``options`` holds an instance of the step type's options model (see ``flows.registry``).
    """

    model_config = ConfigDict(**_CONFIG, arbitrary_types_allowed=True)

    step_definition_id: str = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="Unique id of the step in the flow."
    )
    type: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="The step type.")
    success_status: str = Field(
        min_length=1,
        max_length=MAX_STATUS_LENGTH,
        description="The order's status once this step succeeds.",
    )
    options: SerializeAsAny[BaseModel] = Field(description="Options of the step type.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_DURATION_MS,
        allow_inf_nan=False,
        description="Milliseconds one attempt may take.",
    )
    on_success: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, description="Step to run when this one succeeds."
    )
    on_error: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, description="Step to run when this one fails."
    )
    retry: RetryOptions | None = Field(
        default=None,
        description="Extension: retry policy (an integer means maxAttempts).",
        json_schema_extra=_retry_shorthand_schema,
    )

    @property
    def timeout_s(self) -> float | None:
        """The timeout in seconds, as asyncio wants it."""
        return None if self.timeout is None else self.timeout / 1000

    def retry_policy(self, default: RetryPolicy) -> RetryPolicy:
        """The step's retry policy: its ``retry`` extension, or ``default`` (longer for an
        email: see ``lifecycle.retry.default_for``)."""
        return default_for(self.type, default) if self.retry is None else self.retry.policy()

    def to_json(self) -> dict[str, Any]:
        """The step as the spec writes it: camelCase keys, absent optional keys left out."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["options"] = self.options.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return data


class ChoiceStepDefinition(StepDefinition):
    """A ``choice`` step: like any step, but ``successStatus`` is optional (a choice sets no
    status unless it has one). Its ``success_status`` is None when absent."""

    success_status: str | None = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        max_length=MAX_STATUS_LENGTH,
        description="Optional: the order's status once the choice has routed it.",
    )


def step_base(type_name: object) -> type[StepDefinition]:
    """The model a step of ``type_name`` validates against before its options are typed."""
    return ChoiceStepDefinition if type_name == CHOICE else StepDefinition


@dataclass(frozen=True)
class Flow:
    """A validated flow: its steps in document order, the first one being the entry point.

    ``deadline`` (milliseconds from an order's creation, the object form's extension) is when
    an order of this flow that has not ended becomes unhealthy."""

    name: str
    steps: tuple[StepDefinition, ...]
    description: str = ""
    deadline: float | None = None
    _index: Mapping[str, StepDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a flow has at least one step")
        index = {s.step_definition_id: s for s in self.steps}
        object.__setattr__(self, "_index", index)

    @property
    def first(self) -> StepDefinition:
        """The step every execution starts with."""
        return self.steps[0]

    def step(self, step_id: str) -> StepDefinition:
        """The step with ``step_id``; KeyError when there is none."""
        return self._index[step_id]

    def __contains__(self, step_id: object) -> bool:
        return step_id in self._index

    def is_choice(self, step_id: str | None) -> bool:
        """Whether ``step_id`` names a choice step of this flow."""
        step = self._index.get(step_id) if step_id is not None else None
        return step is not None and step.type == CHOICE

    def leads_to_choice(self, step_id: str) -> bool:
        """Whether ``step_id``'s success or error leads straight to a choice (which the worker
        evaluates as that step's transition, on the order it read)."""
        step = self._index.get(step_id)
        return step is not None and (
            self.is_choice(step.on_success) or self.is_choice(step.on_error)
        )

    def choices_read_history(self, step_id: str) -> bool:
        """Whether a choice that ``step_id`` leads to (directly or through other choices)
        reads what only the order's full read has: its status history, its execution's
        attempts or its health (or the whole order). Else the worker reads the order alone."""
        cache: dict[str, bool] = self.__dict__.setdefault("_history_reads", {})
        if step_id not in cache:
            cache[step_id] = any(_reads_history(when) for when in self._choice_expressions(step_id))
        return cache[step_id]

    def _choice_expressions(self, step_id: str) -> list[str]:
        step = self._index.get(step_id)
        todo = [] if step is None else [step.on_success, step.on_error]
        seen: set[str] = set()
        found: list[str] = []
        while todo:
            next_id = todo.pop()
            if next_id is None or next_id in seen or not self.is_choice(next_id):
                continue
            seen.add(next_id)
            choice = self._index[next_id]
            options: Any = choice.options
            found.extend(rule.when for rule in options.rules)
            todo.extend([options.otherwise, choice.on_error, *(r.next for r in options.rules)])
        return found

    def to_json(self) -> list[dict[str, Any]]:
        """The flow in the spec's array form (loads back to an equal flow)."""
        return [s.to_json() for s in self.steps]


def _class_name(type_name: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in type_name).split()
    return "".join(w[:1].upper() + w[1:] for w in words) + "Step"


@lru_cache(maxsize=256)
def typed_step_model(type_name: str, options_model: type[BaseModel]) -> type[StepDefinition]:
    """The ``StepDefinition`` subclass for one step type: ``type`` fixed, ``options`` typed.

    The JSON Schema is made of these, and a whole flow validates against them in one call.
    """
    fixed_type: Any = Literal[type_name]  # a Literal built at run time: opaque to mypy
    base: Any = step_base(type_name)
    model: Any = create_model(
        _class_name(type_name),
        __base__=base,
        __doc__=f"A {type_name} step.",
        type=(fixed_type, Field(description="The step type.")),
        options=(options_model, Field(description=f"Options of a {type_name} step.")),
    )
    return cast("type[StepDefinition]", model)


@lru_cache(maxsize=16)
def _steps_adapter(types: tuple[tuple[str, type[BaseModel]], ...]) -> TypeAdapter[Any]:
    models = tuple(typed_step_model(name, options) for name, options in types)
    if len(models) == 1:
        return TypeAdapter(list[models[0]])  # type: ignore[valid-type]
    union: Any = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
    return TypeAdapter(list[union])


def steps_adapter(types: Mapping[str, type[BaseModel]]) -> TypeAdapter[Any]:
    """A validator of a whole step list whose steps are discriminated by ``type``."""
    return _steps_adapter(tuple(sorted(types.items())))


# What only the order's full read (its attempts and status history) gives.
_HISTORY_KEYS = frozenset({"statusHistory", "execution", "health"})


@lru_cache(maxsize=4096)
def _reads_history(when: str) -> bool:
    try:
        tree = parse(when)
    except ExpressionError:
        return True  # refused at validation; the full read is the safe side
    for ref in references(tree):
        if ref.root == "order" and (not ref.tokens or ref.tokens[0] in _HISTORY_KEYS):
            return True
    return False
