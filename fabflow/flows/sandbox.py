"""The one Jinja sandbox that step templates and choice expressions run in.

Jinja's immutable sandbox: no attributes starting with ``_``, no methods that change data, no
code execution. On top of it, ``*`` and ``**`` are bounded (``"a" * 10**9`` would make a
gigabyte string; ``9 ** 9 ** 9`` would take hours), and an unknown name is an error that
names its full path (``'order.custmer' is undefined``), never a silent blank. Autoescape is
off: templates make mail text, URLs and JSON strings, never HTML.

A render also runs under a budget (``Budget``, set by ``fabflow.steps.templates``): the
``range`` loops of one render may make at most ``MAX_ITERATIONS`` steps in all (nested loops
multiply), and widths that make huge strings (``center``, ``indent``, ``format`` and ``%``
padding) are bounded; ``str.format`` is not offered (the ``format`` filter and ``~`` do its
work). The operators that Jinja would fold at compile time are the intercepted ones, which it
never folds in a sandbox, so a template cannot do its work while it is being compiled.

It lives in the flow language (not in ``steps``) because validation compiles the same
templates and expressions a worker later runs.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, SupportsIndex

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What the context of a template or an expression holds (see docs/flow-format.md).
CONTEXT_NAMES = ("order", "steps", "error", "step", "flow", "secrets")
MAX_REPEAT = 10_000  # "ab" * n, [x] * n: longer than this is refused
MAX_POWER = 64  # n ** e with |e| above this is refused
MAX_WIDTH = 10_000  # center(n), indent(n), "%-5000s": a padded width above this is refused
MAX_ITERATIONS = 1_000_000  # range() steps in all, in one render
_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)")


@dataclass
class Budget:
    """What one render may still spend: ``range`` steps, and time (``deadline``, monotonic)."""

    deadline: float
    iterations: int = MAX_ITERATIONS

    def spend(self, steps: int) -> None:
        self.iterations -= steps
        if self.iterations < 0:
            raise jinja2.exceptions.SecurityError(
                f"the template's loops make more than {MAX_ITERATIONS} steps"
            )
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise jinja2.exceptions.SecurityError("the template took too long to render")


BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def _range(*args: int) -> range:
    steps = range(*args)
    budget = BUDGET.get()
    if budget is not None:
        budget.spend(len(steps))
    elif len(steps) > MAX_ITERATIONS:
        raise jinja2.exceptions.SecurityError(f"a range longer than {MAX_ITERATIONS}")
    return steps


def _width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise jinja2.exceptions.SecurityError(f"a width larger than {MAX_WIDTH}")


def _padding(text: Any) -> None:
    if isinstance(text, str):
        for found in _WIDTH.finditer(text):
            if found.group(1) == "*" or int(found.group(1)) > MAX_WIDTH:
                raise jinja2.exceptions.SecurityError(f"a padding wider than {MAX_WIDTH}")


class _ScopedDict(dict[str, Any]):
    """A dict that knows its path in the context, so undefined names can be reported in full."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        super().__init__(data)
        self._fabflow_path = path

    def __getitem__(self, key: str) -> Any:
        return scope(super().__getitem__(key), f"{self._fabflow_path}.{key}")


class _ScopedList(list[Any]):
    """A list that knows its path, for the same reason."""

    def __init__(self, data: list[Any], path: str) -> None:
        super().__init__(data)
        self._fabflow_path = path

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        value = super().__getitem__(index)
        if isinstance(index, slice):
            return value
        return scope(value, f"{self._fabflow_path}[{int(index)}]")

    def __iter__(self) -> Iterator[Any]:
        for i, value in enumerate(super().__iter__()):
            yield scope(value, f"{self._fabflow_path}[{i}]")


def scope(value: Any, path: str) -> Any:
    """``value`` wrapped so that what is missing under it is reported with its path."""
    if isinstance(value, dict) and not isinstance(value, _ScopedDict):
        return _ScopedDict(value, path)
    if isinstance(value, list) and not isinstance(value, _ScopedList):
        return _ScopedList(value, path)
    return value


def scoped_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as templates see it. None (``error`` outside an error path) becomes an
    empty, falsy mapping, so ``error.message`` reports "'error.message' is undefined"."""
    return {k: scope({} if v is None else v, k) for k, v in context.items()}


class _NamedUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names the full path of what was missing."""

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        owner = getattr(self._undefined_obj, "_fabflow_path", None)
        if self._undefined_obj is jinja2.utils.missing:
            names = ", ".join(CONTEXT_NAMES)
            return f"{name!r} is undefined (the context has {names})"
        if owner is not None:
            sep = "" if isinstance(name, int) else "."
            shown = f"[{name}]" if isinstance(name, int) else name
            return f"'{owner}{sep}{shown}' is undefined"
        return str(super()._undefined_message)


def _repeat(left: Any, right: Any) -> Any:
    for times, other in ((right, left), (left, right)):
        sized = isinstance(other, str | list | tuple) and isinstance(times, int)
        if sized and times * max(len(other), 1) > MAX_REPEAT:
            raise jinja2.exceptions.SecurityError(f"repetition longer than {MAX_REPEAT}")
    return operator.mul(left, right)


def _power(left: Any, right: Any) -> Any:
    if isinstance(right, int | float) and abs(right) > MAX_POWER:
        raise jinja2.exceptions.SecurityError(f"exponent larger than {MAX_POWER}")
    return operator.pow(left, right)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            return _repeat(left, right)
        if operator_name == "**":
            return _power(left, right)
        if operator_name == "%":
            _padding(left)
            return operator.mod(left, right)
        return super().call_binop(context, operator_name, left, right)

    def wrap_str_format(self, value: Any) -> None:
        """No ``str.format``: refused by ``is_safe_attribute`` instead of wrapped."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False  # its widths are unbounded: the format filter and ~ do its work
        return bool(super().is_safe_attribute(obj, attr, value))


def _bounded_filter(name: str, check: Any) -> Any:
    original = SANDBOX.filters[name]

    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        check(value, *args, **kwargs)
        return original(value, *args, **kwargs)

    return bounded


SANDBOX = _Sandbox(undefined=_NamedUndefined, autoescape=False, keep_trailing_newline=True)
SANDBOX.globals["range"] = _range
SANDBOX.filters["center"] = _bounded_filter("center", lambda _v, width=80, **_k: _width(width))
SANDBOX.filters["indent"] = _bounded_filter("indent", lambda _v, width=4, *_a, **_k: _width(width))
SANDBOX.filters["format"] = _bounded_filter("format", lambda value, *_a, **_k: _padding(value))
