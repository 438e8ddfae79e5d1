"""The one Jinja sandbox that step templates and choice expressions run in.

Jinja's immutable sandbox: no attributes starting with ``_``, no methods that change data, no
code execution. On top of it, ``*`` and ``**`` are bounded (``"a" * 10**9`` would make a
gigabyte string; ``9 ** 9 ** 9`` would take hours), and an unknown name is an error that
names its full path (``'order.custmer' is undefined``), never a silent blank. Autoescape is
off: templates make mail text, URLs and JSON strings, never HTML.

It lives in the flow language (not in ``steps``) because validation compiles the same
templates and expressions a worker later runs.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from typing import Any, SupportsIndex

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What the context of a template or an expression holds (see docs/flow-format.md).
CONTEXT_NAMES = ("order", "steps", "error", "step", "flow", "secrets")
MAX_REPEAT = 10_000  # "ab" * n, [x] * n: longer than this is refused
MAX_POWER = 64  # n ** e with |e| above this is refused


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
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            return _repeat(left, right)
        if operator_name == "**":
            return _power(left, right)
        return super().call_binop(context, operator_name, left, right)


SANDBOX = _Sandbox(undefined=_NamedUndefined, autoescape=False, keep_trailing_newline=True)
