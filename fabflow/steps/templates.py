"""Sandboxed Jinja2 templates for step options (the email subject and message).

Templates see only the documented context (``order``, ``error``, ``step``, ``flow``: plain JSON
data) in Jinja's immutable sandbox: no attributes starting with ``_``, no methods that change
data, no code execution. An unknown variable is an error of the step that names the variable
(``'order.custmer' is undefined``), never a silent blank. Autoescape is off: mail is plain text.
Compiled templates are cached by source text, so a flow's template compiles once per process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, SupportsIndex

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fabflow.errors import PermanentStepError


class _ScopedDict(dict[str, Any]):
    """A dict that knows its path in the context, so undefined names can be reported in full."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        super().__init__(data)
        self._fabflow_path = path

    def __getitem__(self, key: str) -> Any:
        return _scope(super().__getitem__(key), f"{self._fabflow_path}.{key}")


class _ScopedList(list[Any]):
    """A list that knows its path, for the same reason."""

    def __init__(self, data: list[Any], path: str) -> None:
        super().__init__(data)
        self._fabflow_path = path

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        value = super().__getitem__(index)
        if isinstance(index, slice):
            return value
        return _scope(value, f"{self._fabflow_path}[{int(index)}]")

    def __iter__(self) -> Iterator[Any]:
        for i, value in enumerate(super().__iter__()):
            yield _scope(value, f"{self._fabflow_path}[{i}]")


def _scope(value: Any, path: str) -> Any:
    if isinstance(value, dict) and not isinstance(value, _ScopedDict):
        return _ScopedDict(value, path)
    if isinstance(value, list) and not isinstance(value, _ScopedList):
        return _ScopedList(value, path)
    return value


class _NamedUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names the full path of what was missing."""

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        owner = getattr(self._undefined_obj, "_fabflow_path", None)
        if self._undefined_obj is jinja2.utils.missing:
            return f"{name!r} is undefined (the context has order, error, step and flow)"
        if owner is not None:
            sep = "" if isinstance(name, int) else "."
            shown = f"[{name}]" if isinstance(name, int) else name
            return f"'{owner}{sep}{shown}' is undefined"
        return str(super()._undefined_message)


_ENV = ImmutableSandboxedEnvironment(
    undefined=_NamedUndefined, autoescape=False, keep_trailing_newline=True
)


@lru_cache(maxsize=1024)
def compile_template(source: str) -> jinja2.Template:
    """The compiled template for ``source`` (cached); ``jinja2.TemplateSyntaxError`` if invalid."""
    return _ENV.from_string(source)


def syntax_problem(source: str) -> str | None:
    """A message for a template that does not compile, or None (for flow validation)."""
    try:
        compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    return None


def render(source: str, context: Mapping[str, Any], what: str = "template") -> str:
    """Render ``source`` with ``context``; a failure is a ``PermanentStepError`` (``template``)."""
    try:
        template = compile_template(source)
        # None (``error`` outside an error path) becomes an empty, falsy mapping so that
        # ``error.message`` reports "'error.message' is undefined" rather than a NoneType riddle.
        scoped = {k: _scope({} if v is None else v, k) for k, v in context.items()}
        return template.render(scoped)
    except jinja2.TemplateSyntaxError as exc:
        message = f"{what}: syntax error on line {exc.lineno}: {exc.message}"
    except jinja2.UndefinedError as exc:
        message = f"{what}: {exc.message}"
    except jinja2.exceptions.SecurityError as exc:
        shown = str(exc).replace("_ScopedDict", "dict").replace("_ScopedList", "list")
        message = f"{what}: not allowed in a template: {shown}"
    except Exception as exc:  # a filter's TypeError, a division by zero ...
        message = f"{what}: {type(exc).__name__}: {exc}"
    raise PermanentStepError(message, error_type="template", details={"template": what})
