"""Order intake: an order is checked whole before it is accepted, or refused with every problem.

The structure (types, lengths, limits) is checked here; each line is checked against its product
(unknown product, parameters out of range, characters the font cannot draw) by
``fabflow.production``. The API answers 422 and ``fabflow run`` exits 2 with these problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fabflow.errors import InvalidOrder, Problem

if TYPE_CHECKING:
    from fabflow.production.line_check import FindProduct

MAX_LINES = 100
MAX_TEXT = 200
MAX_DATA_KEYS = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(_Strict):
    name: str = Field(default="", max_length=MAX_TEXT)
    email: str = Field(default="", max_length=MAX_TEXT)


class OrderLine(_Strict):
    id: str = Field(min_length=1, max_length=100)
    product: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=10_000)
    parameters: dict[str, Any] = Field(default_factory=dict)
    # A tenant's own product is pinned to a version: the one given, else the current one.
    product_version: int | None = Field(default=None, alias="productVersion", ge=1, le=1_000_000)


class OrderInput(_Strict):
    """The order a shop sends (DESIGN section 5)."""

    external_id: str | None = Field(default=None, alias="externalId", max_length=MAX_TEXT)
    flow_id: str = Field(default="default", alias="flowId", min_length=1, max_length=100)
    customer: Customer = Field(default_factory=Customer)
    lines: list[OrderLine] = Field(default_factory=list, max_length=MAX_LINES)
    data: dict[str, Any] = Field(default_factory=dict, max_length=MAX_DATA_KEYS)


def check_order(
    raw: Any, *, check_products: bool = True, find: FindProduct | None = None
) -> dict[str, Any]:
    """The order in its stored form (camelCase JSON), or InvalidOrder with every problem.
    ``find`` looks up the tenant's own products (lines of them get ``productVersion``)."""
    problems: list[Problem] = []
    try:
        order = OrderInput.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise InvalidOrder(_summary(problems), problems) from None
    data = order.model_dump(mode="json", by_alias=True)
    for line in data["lines"]:
        if line["productVersion"] is None:
            del line["productVersion"]  # set by intake for a tenant's own product
    ids = [line["id"] for line in data["lines"]]
    for index, line_id in enumerate(ids):
        if ids.index(line_id) != index:
            problems.append(Problem(f"/lines/{index}/id", f"duplicate line id {line_id!r}"))
    if check_products and data["lines"]:
        problems += _product_problems(data["lines"], find)
    if problems:
        raise InvalidOrder(_summary(problems), problems)
    return data


def _product_problems(lines: list[dict[str, Any]], find: FindProduct | None) -> list[Problem]:
    from fabflow.production.line_check import validate_lines

    return list(validate_lines(lines, find))


def _problem(error: Any) -> Problem:
    loc = [str(p) for p in error["loc"]]
    pointer = "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in loc) if loc else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(pointer, f"unknown key {loc[-1]!r}")
    if kind == "missing":
        return Problem(pointer, f"missing required key {loc[-1]!r}")
    return Problem(pointer, error["msg"].replace("Input", "value", 1).replace("String", "text", 1))


def _summary(problems: list[Problem]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"invalid order: {first.pointer or '/'}: {first.message}{more}"
