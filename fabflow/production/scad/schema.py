"""Customizer parameters as a JSON Schema, and order-line values checked against them.

The schema is draft 2020-12: an object with one property per parameter, no other keys
(``additionalProperties: false``) and none required (defaults fill in). Each property has
``title`` (the variable name, as OpenSCAD shows it), ``description``, ``default``, its limits
(``minimum``/``maximum``, ``maxLength``, ``minItems``/``maxItems``) and three extensions for a
form:

- ``x-tab``: the Customizer tab (``""`` before any tab; OpenSCAD shows ``"Global"`` in every
  tab); the object's ``x-tabs`` lists the tabs in source order;
- ``x-widget``: ``slider``, ``spinbox``, ``dropdown``, ``text``, ``checkbox`` or ``vector``;
- ``x-step``: a slider's step, counted from ``minimum`` as an HTML range input counts it (also
  given as ``multipleOf`` when that says the same: whole steps from a multiple of the step),
  or a spin box's increment (not a rule).

A dropdown has ``enum`` (for validators) and ``oneOf`` with one ``{"const", "title"}`` per
value, the title being its label: the labelled-choice form that JSON Schema form renderers
(react-jsonschema-form among them) draw as a select.

``values_problems`` checks values as strictly as fabflow's built-in products: ``"2"`` and
``true`` are not numbers, NaN and infinities are refused, unknown keys are refused with the
closest name, and every message names the allowed range or values.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fabflow.errors import Problem

if TYPE_CHECKING:
    from fabflow.production.scad.customizer import ScadParameter

DIALECT = "https://json-schema.org/draft/2020-12/schema"
GRID_TOLERANCE = 1e-6  # in steps: 0.1 + 0.2 lands on a 0.1 grid, 0.3004 does not


def customizer_schema(
    parameters: Sequence[ScadParameter], title: str = "", description: str = ""
) -> dict[str, Any]:
    """The JSON Schema of a parameters object."""
    schema: dict[str, Any] = {"$schema": DIALECT, "type": "object"}
    if title:
        schema["title"] = title
    if description:
        schema["description"] = description
    schema["properties"] = {p.name: parameter_schema(p) for p in parameters}
    schema["required"] = []
    schema["additionalProperties"] = False
    schema["x-tabs"] = list(dict.fromkeys(p.tab for p in parameters))
    return schema


def parameter_schema(parameter: ScadParameter) -> dict[str, Any]:
    """The JSON Schema of one parameter's value."""
    schema: dict[str, Any] = {
        "title": parameter.name,
        "description": parameter.description,
        **_value_schema(parameter),
        "default": tidy(parameter.default),
        "x-tab": parameter.tab,
        "x-widget": parameter.widget,
    }
    return schema


def _value_schema(parameter: ScadParameter) -> dict[str, Any]:
    if parameter.kind == "boolean":
        return {"type": "boolean"}
    if parameter.options:
        return {
            "type": _number_type(parameter) if parameter.kind == "number" else "string",
            "enum": [tidy(value) for value, _ in parameter.options],
            "oneOf": [{"const": tidy(v), "title": label} for v, label in parameter.options],
        }
    if parameter.kind == "string":
        limit = {} if parameter.max_length is None else {"maxLength": parameter.max_length}
        return {"type": "string", **limit}
    if parameter.kind == "vector":
        size = len(parameter.default)
        items = {"type": _number_type(parameter), **_limits(parameter)}
        return {"type": "array", "items": items, "minItems": size, "maxItems": size}
    return {"type": _number_type(parameter), **_limits(parameter)}


def _number_type(parameter: ScadParameter) -> str:
    return "integer" if parameter.integer else "number"


def _limits(parameter: ScadParameter) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if parameter.minimum is not None:
        limits["minimum"] = tidy(parameter.minimum)
    if parameter.maximum is not None:
        limits["maximum"] = tidy(parameter.maximum)
    step, low = parameter.step, parameter.minimum
    if step is None:
        return limits
    limits["x-step"] = tidy(step)
    # multipleOf counts from 0 and is exact only for whole numbers: give it when it says the
    # same as the slider's grid.
    whole = parameter.on_grid and parameter.integer and step > 1
    if whole and low is not None and low % step == 0:
        limits["multipleOf"] = tidy(step)
    return limits


def values_problems(parameters: Sequence[ScadParameter], values: Any) -> list[Problem]:
    """Every problem with a parameters object; pointers are relative to it (``/size/1``)."""
    if not isinstance(values, Mapping):
        return [Problem("", f"parameters must be an object of values (got {show(values)})")]
    known = {p.name: p for p in parameters}
    problems: list[Problem] = []
    for key, value in values.items():
        parameter = known.get(key)
        if parameter is None:
            problems.append(Problem(pointer(str(key)), _unknown(str(key), list(known))))
        else:
            problems.extend(value_problems(parameter, value))
    return problems


def value_problems(parameter: ScadParameter, value: Any) -> list[Problem]:
    """The problems of one parameter's value (none when it is fine)."""
    where, name = pointer(parameter.name), parameter.name
    if parameter.kind == "vector":
        return _vector_problems(parameter, value)
    if parameter.kind == "boolean":
        fine = isinstance(value, bool)
        return [] if fine else [Problem(where, f"{name} must be true or false (got {show(value)})")]
    if parameter.options:
        message = _choice_problem(parameter, value)
    elif parameter.kind == "string":
        message = _string_problem(parameter, value)
    else:
        message = _number_problem(parameter, value, name)
    return [] if message is None else [Problem(where, message)]


def _choice_problem(parameter: ScadParameter, value: Any) -> str | None:
    allowed = [v for v, _ in parameter.options]
    if parameter.kind == "number" and not is_number(value):
        found = False
    else:
        found = any(type(value) is not bool and value == v for v in allowed)
    if found:
        return None
    hint = ""
    if isinstance(value, str) and parameter.kind == "string":
        close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
    options = show_options(parameter.options)
    return f"{parameter.name} must be one of {options} (got {show(value)}){hint}"


def _string_problem(parameter: ScadParameter, value: Any) -> str | None:
    limit = parameter.max_length
    if not isinstance(value, str):
        expected = "a string" if limit is None else f"a string of at most {limit} characters"
        return f"{parameter.name} must be {expected} (got {show(value)})"
    if limit is not None and len(value) > limit:
        return f"{parameter.name} must be at most {limit} characters long (got {len(value)})"
    return None


def _number_problem(parameter: ScadParameter, value: Any, name: str) -> str | None:
    """The problem with a number (``name`` says which: ``size`` or ``size[1]``)."""
    whole = "a whole number" if parameter.integer else "a number"
    limits = _range_words(parameter)
    if not is_number(value):
        return f"{name} must be {whole}{limits} (got {show(value)})"
    if parameter.integer and not float(value).is_integer():
        return f"{name} must be a whole number{limits} (got {show(value)})"
    low, high = parameter.minimum, parameter.maximum
    outside = (low is not None and value < low - 1e-9) or (high is not None and value > high + 1e-9)
    off_grid = parameter.on_grid and not on_grid(value, low or 0.0, parameter.step or 1.0)
    if outside or off_grid:
        return f"{name} must be{limits} (got {show(value)})"
    return None


def _range_words(parameter: ScadParameter) -> str:
    """`` between 4 and 14 in steps of 0.5``, `` at least 0``, or ``""``."""
    low, high, words = parameter.minimum, parameter.maximum, ""
    if low is not None and high is not None:
        words = f" between {fmt(low)} and {fmt(high)}"
    elif low is not None:
        words = f" at least {fmt(low)}"
    elif high is not None:
        words = f" at most {fmt(high)}"
    step = parameter.step
    if parameter.on_grid and step is not None and not (parameter.integer and step == 1):
        words += f" in steps of {fmt(step)}"
    return words


def _vector_problems(parameter: ScadParameter, value: Any) -> list[Problem]:
    size, name = len(parameter.default), parameter.name
    if not isinstance(value, list) or len(value) != size:
        whole = "whole numbers" if parameter.integer else "numbers"
        each = _range_words(parameter)
        each = f", each{each}" if each else ""
        message = f"{name} must be a list of {size} {whole}{each} (got {show(value)})"
        return [Problem(pointer(name), message)]
    problems = []
    for index, item in enumerate(value):
        problem = _number_problem(parameter, item, f"{name}[{index}]")
        if problem is not None:
            problems.append(Problem(pointer(name, index), problem))
    return problems


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[key.lower()]] if key.lower() in lowered else []
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    listed = ", ".join(known) if known else "none"
    return f'unknown parameter "{key}"{hint}; parameters are {listed}'


def tidy(value: Any) -> Any:
    """Whole floats as ints (4.0 -> 4), also inside lists: the same JSON number, read easier."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


def is_number(value: Any) -> bool:
    """A finite JSON number (not a boolean, not a numeric string)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int of hundreds of digits, which JSON allows
        return False


def on_grid(value: float, low: float, step: float) -> bool:
    """Whether ``value`` is ``low + k * step`` for a whole ``k``, within float rounding."""
    steps = (value - low) / step
    return abs(steps - round(steps)) <= GRID_TOLERANCE


def pointer(*tokens: str | int) -> str:
    """A JSON Pointer from its reference tokens (RFC 6901 escapes ``~`` and ``/``)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def fmt(value: float) -> str:
    """A number as a person writes it: 14, 0.5, 1e-07."""
    return f"{value:.10g}"


def show(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a value for a message (NaN shows as NaN)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_options(options: Sequence[tuple[Any, str]]) -> str:
    """``10 (Small), 20 (Large)``, or ``"a", "b"`` when the labels add nothing."""
    shown = []
    for value, label in options:
        text = fmt(value) if isinstance(value, int | float) else json.dumps(value)
        same = label in (text, str(value))
        shown.append(text if same else f"{text} ({label})")
    return ", ".join(shown)
