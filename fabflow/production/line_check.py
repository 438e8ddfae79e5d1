"""Order intake: refuse a line the products cannot make, before the order is accepted.

``validate_lines`` checks each line's product and parameters and returns every problem with a
JSON Pointer into the order (``/lines/0/parameters/text``) and a message a person can act on:
an unknown product (with the nearest name), an unknown parameter (with the nearest key), a
value of the wrong type or out of range, characters the font cannot draw, text that does not fit.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from fabflow.errors import NotFound, Problem, UnknownProduct
from fabflow.production.products.base import ProductParameters
from fabflow.production.registry import ProductClass, get, products
from fabflow.production.text import describe_characters, missing_characters


@dataclass(frozen=True)
class CustomProduct:
    """One version of a tenant's own product (a model), as intake checks a line against it:
    ``check`` gives the problems of a parameters object, pointers relative to it."""

    name: str
    version: int
    check: Callable[[Mapping[str, Any]], list[Problem]]


# The tenant's product called name, at version (None: the current one); None when the tenant
# has no product of that name; NotFound when it has no such version.
FindProduct = Callable[[str, "int | None"], "CustomProduct | None"]


def validate_lines(lines: list[dict[str, Any]], find: FindProduct | None = None) -> list[Problem]:
    """Every problem of every order line's product and parameters (empty when all are fine).
    A line of a tenant's own product is pinned to the version it is checked against: its
    ``productVersion`` is set."""
    problems: list[Problem] = []
    for index, line in enumerate(lines):
        problems.extend(line_problems(line, f"/lines/{index}", find))
    return problems


def line_problems(line: Any, pointer: str, find: FindProduct | None = None) -> list[Problem]:
    """Problems of one order line, with pointers below ``pointer``."""
    if not isinstance(line, dict):
        return [Problem(pointer, "an order line must be an object")]
    name = line.get("product")
    if find is not None and isinstance(name, str) and name not in products():
        custom = _custom(find, name, line.get("productVersion"), pointer)
        if custom is not None:
            return custom(line)
    product = _product(name, f"{pointer}/product")
    if isinstance(product, Problem):
        return [product]
    if line.get("productVersion") is not None:
        message = f"{product.name} is built in and has no versions: leave productVersion out"
        return [Problem(f"{pointer}/productVersion", message)]
    parameters = line.get("parameters", {})
    if not isinstance(parameters, dict):
        return [Problem(f"{pointer}/parameters", "must be an object of parameter values")]
    return [
        Problem(f"{pointer}/parameters/{key}" if key else f"{pointer}/parameters", message)
        for key, message in parameter_problems(product, parameters)
    ]


def _custom(
    find: FindProduct, name: str, version: Any, pointer: str
) -> Callable[[dict[str, Any]], list[Problem]] | None:
    """How to check a line of the tenant's product ``name``, or None if it has none."""
    try:
        product = find(name, version if isinstance(version, int) else None)
    except NotFound as exc:
        refused = [Problem(f"{pointer}/productVersion", exc.message)]
        return lambda _line: refused
    if product is None:
        return None
    found = product

    def check(line: dict[str, Any]) -> list[Problem]:
        parameters = line.get("parameters", {})
        if not isinstance(parameters, dict):
            return [Problem(f"{pointer}/parameters", "must be an object of parameter values")]
        line["productVersion"] = found.version  # the order keeps the version it was checked on
        return [
            Problem(f"{pointer}/parameters{p.pointer}", p.message) for p in found.check(parameters)
        ]

    return check


def parameter_problems(product: ProductClass, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter key, message) for each problem; key is "" for the parameters as a whole."""
    model = product.parameters
    try:
        params = model.model_validate(parameters)
    except ValidationError as exc:
        found = [_explain(error, model) for error in exc.errors()]
        flagged = {key for key, _ in found}
        return found + [p for p in _text_problems(product, parameters) if p[0] not in flagged]
    return [(p.parameter, p.message) for p in product().problems(params)]


def _text_problems(product: ProductClass, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """Undrawable characters, reported even when another parameter is wrong."""
    found = []
    for attribute in product.text_parameters:
        key = product.parameters.model_fields[attribute].alias or attribute
        text = parameters.get(key)
        if isinstance(text, str) and (missing := missing_characters(text)):
            found.append((key, f"the font cannot draw {describe_characters(missing)}"))
    return found


def _product(name: Any, pointer: str) -> ProductClass | Problem:
    known = ", ".join(sorted(products()))
    if name is None:
        return Problem(pointer, f"missing: name the product (one of {known})")
    if not isinstance(name, str):
        return Problem(pointer, f"must be a product name (one of {known})")
    try:
        return get(name)
    except UnknownProduct as exc:
        return Problem(pointer, f"{exc}; products are {known} and the tenant's own")


def _explain(error: ErrorDetails, model: type[ProductParameters]) -> tuple[str, str]:
    key = "/".join(str(part) for part in error["loc"])
    kind, ctx, got = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "extra_forbidden":
        return key, _unknown_parameter(key, model)
    if kind == "missing":
        return key, "missing: this product needs it"
    limits = {
        "less_than_equal": "at most {le}",
        "less_than": "less than {lt}",
        "greater_than_equal": "at least {ge}",
        "greater_than": "more than {gt}",
    }
    if kind in limits:
        bound = {name: f"{value:g}" for name, value in ctx.items()}
        return key, f"must be {limits[kind].format(**bound)} (got {got!r})"
    if kind == "string_too_long":
        return key, f"must be at most {ctx['max_length']} characters (got {len(str(got))})"
    if kind == "string_too_short":
        return key, f"must be at least {ctx['min_length']} characters"
    message = error["msg"].removeprefix("Value error, ")
    if message[1:2].islower():  # "Input should be" -> "input should be"; "US sizes" stays
        message = message[:1].lower() + message[1:]
    return key, f"{message} (got {got!r})"


def _unknown_parameter(key: str, model: type[ProductParameters]) -> str:
    known = sorted(field.alias or name for name, field in model.model_fields.items())
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return f'unknown parameter "{key}"{hint}; parameters are {", ".join(known)}'
