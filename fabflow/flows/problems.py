"""Problems with a JSON Pointer and a message a person can act on.

Pydantic's errors are translated here, once, so every model (ours or a plugin's) reports in the
same words: ``/0/options/recipients/1: "bob@" is not a valid email address: ...``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from fabflow.errors import Problem


def escape(token: str | int) -> str:
    """Escape one reference token (RFC 6901: ``~`` then ``/``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(base: str, *tokens: str | int) -> str:
    """``base`` extended with ``tokens``: ``pointer("/0", "options") == "/0/options"``."""
    return base + "".join("/" + escape(t) for t in tokens)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` for the closest choice, or ``""`` when none is close."""
    pool = list(choices)
    found = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not found:
        # Case slips ("STL", "OnError") are common and difflib weighs case fully.
        lowered = {c.lower(): c for c in pool}
        found = [lowered[word.lower()]] if word.lower() in lowered else []
    return f' (did you mean "{found[0]}"?)' if found else ""


def json_type(value: object) -> str:
    """The JSON name of a Python value's type, as a person reading the document sees it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: object, limit: int = 60) -> str:
    """A short JSON rendering of ``value`` for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


def _field_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _nested_model(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that owns the object at ``loc`` (for key suggestions), when it is a model."""
    current: type[BaseModel] = model
    for token in loc:
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        field = fields.get(str(token))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return None
        current = inner
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class in ``X`` or ``X | None``."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _message(error: Any, model: type[BaseModel]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    loc: tuple[str | int, ...] = error["loc"]
    if kind == "missing":
        return f'missing key "{loc[-1]}"'
    if kind == "extra_forbidden":
        owner = _nested_model(model, loc[:-1])
        hint = suggest(str(loc[-1]), _field_keys(owner)) if owner else ""
        return f'unknown key "{loc[-1]}"{hint}'
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {json_type(value)}"
    return _constraint_message(kind, ctx, value) or _fallback(error)


def _constraint_message(kind: str, ctx: dict[str, Any], value: object) -> str | None:
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else _at_least(ctx, "character")
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (got {len(str(value))})"
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else _at_least(ctx, "item")
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "greater than", "greater_than_equal": "at least"}
        words |= {"less_than": "less than", "less_than_equal": "at most"}
        limit = next(iter(ctx.values()))
        return f"must be {words[kind]} {_number(limit)} (got {show(value)})"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "literal_error":
        return _literal_message(ctx, value)
    if kind == "value_error":
        return str(ctx.get("error", "invalid value"))
    return None


def _at_least(ctx: dict[str, Any], unit: str) -> str:
    return f"must have at least {ctx['min_length']} {unit}s"


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _literal_message(ctx: dict[str, Any], value: object) -> str:
    # pydantic renders the choices as "'a', 'b' or 'c'"; rebuild them as JSON strings.
    expected = str(ctx.get("expected", ""))
    choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",")]
    listed = ", ".join(f'"{c}"' for c in choices)
    hint = suggest(value, choices) if isinstance(value, str) else ""
    return f"must be one of {listed}; got {show(value)}{hint}"


def _fallback(error: Any) -> str:
    msg = str(error.get("msg", "invalid value"))
    return msg[:1].lower() + msg[1:]


def from_validation_error(exc: ValidationError, base: str, model: type[BaseModel]) -> list[Problem]:
    """Translate every error of ``exc`` (raised by ``model``) into problems under ``base``."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(t for t in error["loc"] if t != "[key]")
        # A missing key is not in the document: point at the object that lacks it.
        where = loc[:-1] if error["type"] == "missing" else loc
        problems.append(Problem(pointer(base, *where), _message({**error, "loc": loc}, model)))
    return problems
