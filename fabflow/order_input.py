"""Order intake: an order is checked whole before it is accepted, or refused with every problem.

The structure (types, lengths, limits) is checked here; each line is checked against its product
(unknown product, parameters out of range, characters the font cannot draw) by
``fabflow.production``. The API answers 422 and ``fabflow run`` exits 2 with these problems.

The JSON limits (``MAX_JSON_DEPTH``, ``MIN_INT``/``MAX_INT``, no NUL, no NaN or Infinity) hold
for everything fabflow takes in and passes on: ``json_problems`` checks any document against
them, so intake, callbacks and steps refuse the same values (docs/api.md, "Limits").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fabflow.errors import InvalidInput, InvalidOrder, Problem

if TYPE_CHECKING:
    from fabflow.production.line_check import FindProduct

MAX_LINES = 100
MAX_TEXT = 200
MAX_DATA_KEYS = 100
# Objects and arrays nest at most this deep, counted from a document's top (an order's ``data``
# is level 2). Far below what breaks encoders: orjson, which the REST step and the store use,
# refuses 255 levels ("Recursion limit reached"), and a step wraps the order in a few more.
MAX_JSON_DEPTH = 32
# Integers fit 64 bits, signed: what the store's JSON codec and most receivers can hold.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
MAX_JSON_PROBLEMS = 20  # a document with a million bad values answers with this many


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(_Strict):
    name: str = Field(default="", max_length=MAX_TEXT)
    email: str = Field(default="", max_length=MAX_TEXT)


class OrderLine(_Strict):
    id: str = Field(min_length=1, max_length=100)
    product: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=10_000, strict=True)  # "2" and true are not 2
    parameters: dict[str, Any] = Field(default_factory=dict)
    # A tenant's own product is pinned to a version: the one given, else the current one.
    product_version: int | None = Field(
        default=None, alias="productVersion", ge=1, le=1_000_000, strict=True
    )


class OrderInput(_Strict):
    """The order a shop sends (DESIGN section 5)."""

    external_id: str | None = Field(default=None, alias="externalId", max_length=MAX_TEXT)
    flow_id: str = Field(default="default", alias="flowId", min_length=1, max_length=100)
    customer: Customer = Field(default_factory=Customer)
    lines: list[OrderLine] = Field(default_factory=list, max_length=MAX_LINES)
    data: dict[str, Any] = Field(default_factory=dict, max_length=MAX_DATA_KEYS)

    @field_validator("external_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # A blank id ("" or spaces, stripped) means "no id": it never dedupes, so two blank
        # orders are two orders, not a clash on the unique index.
        return value or None


def check_order(
    raw: Any, *, check_products: bool = True, find: FindProduct | None = None
) -> dict[str, Any]:
    """The order in its stored form (camelCase JSON), or InvalidOrder with every problem.
    ``find`` looks up the tenant's own products (lines of them get ``productVersion``)."""
    data = _validated(raw).model_dump(mode="json", by_alias=True)
    problems: list[Problem] = []
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


def _validated(raw: Any) -> OrderInput:
    """The order's structure, or InvalidOrder with the JSON limits' problems and the
    structure's (one problem per pointer)."""
    problems = json_problems(raw)
    try:
        order = OrderInput.model_validate(raw)
    except ValidationError as exc:
        seen = {p.pointer for p in problems}
        problems += [p for p in map(_problem, exc.errors()) if p.pointer not in seen]
        raise InvalidOrder(_summary(problems), problems) from None
    if problems:
        raise InvalidOrder(_summary(problems), problems)
    return order


def patched_data(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """An order's ``data`` after a JSON merge patch (RFC 7386), held to intake's limits, or
    InvalidInput with every problem (pointers under ``/data``)."""
    merged = merge_patch(current, patch)
    problems = json_problems(merged, "/data")
    if len(merged) > MAX_DATA_KEYS:
        problems.append(Problem("/data", f"the patched data has more than {MAX_DATA_KEYS} keys"))
    if problems:
        raise InvalidInput(f"invalid data: {problems[0].pointer}: {problems[0].message}", problems)
    return dict(merged)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch``'s members replace ``target``'s, ``null`` removes one, and objects
    merge member by member; anything but an object replaces the whole."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def json_problems(value: Any, pointer: str = "") -> list[Problem]:
    """What in a decoded JSON document breaks fabflow's JSON limits, each with its pointer:
    nesting deeper than ``MAX_JSON_DEPTH``, integers outside ``MIN_INT..MAX_INT``, NaN or
    Infinity, NUL in a text or a key (PostgreSQL cannot store it). At most
    ``MAX_JSON_PROBLEMS``; the walk never goes deeper than the limit, so it is cheap."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, pointer, 1)]
    while stack and len(problems) < MAX_JSON_PROBLEMS:
        item, where, level = stack.pop()
        problem = _scalar_problem(item)
        if problem is not None:
            problems.append(Problem(where, problem))
        elif isinstance(item, (dict, list)) and level > MAX_JSON_DEPTH:
            message = f"nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays"
            problems.append(Problem(where, message))
        elif isinstance(item, dict):
            stack += reversed(_members(item, where, level, problems))
        elif isinstance(item, list):
            stack += reversed([(v, f"{where}/{i}", level + 1) for i, v in enumerate(item)])
    return problems[:MAX_JSON_PROBLEMS]


def _members(
    item: dict[str, Any], where: str, level: int, problems: list[Problem]
) -> list[tuple[Any, str, int]]:
    members = []
    for key, child in item.items():
        at = f"{where}/{escape(key)}"
        if "\x00" in key:
            problems.append(Problem(at, "the key contains a NUL character (\\u0000)"))
        members.append((child, at, level + 1))
    return members


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return "contains a NUL character (\\u0000)" if "\x00" in item else None
    if isinstance(item, bool):
        return None
    if isinstance(item, int) and not MIN_INT <= item <= MAX_INT:
        return "an integer outside the 64-bit range -2^63..2^63-1"
    if isinstance(item, float) and not math.isfinite(item):
        return "NaN and Infinity are not JSON numbers"
    return None


def escape(key: str) -> str:
    """A key as a JSON Pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _product_problems(lines: list[dict[str, Any]], find: FindProduct | None) -> list[Problem]:
    from fabflow.production.line_check import validate_lines

    return list(validate_lines(lines, find))


def _problem(error: Any) -> Problem:
    loc = [str(p) for p in error["loc"]]
    pointer = "/" + "/".join(escape(p) for p in loc) if loc else ""
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
