"""Sandboxed Jinja2 templates for step options (the email subject and message).

Templates see only the documented context (``order``, ``steps``, ``error``, ``step``, ``flow``,
``secrets``: plain JSON data) in the sandbox of ``fabflow.flows.sandbox``: no attributes
starting with ``_``, no methods that change data, no code execution. An unknown variable is an
error of the step that names the variable (``'order.custmer' is undefined``), never a silent
blank. Autoescape is off: mail is plain text.
Compiled templates are cached by source text, so a flow's template compiles once per process.

Each render runs under a budget: at most ``RENDER_SECONDS`` and ``MAX_OUTPUT_CHARS`` of output,
and the sandbox's bound on loop steps, so no template can hold a worker (or the API serving
beside it) for long. A template with statements (``{% for %}``, ``{% set %}``) is rendered in a
thread by the steps (``has_statements``): the event loop never waits for a loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

from fabflow.errors import PermanentStepError
from fabflow.flows.sandbox import BUDGET, SANDBOX, Budget, scoped_context

RENDER_SECONDS = 1.0
MAX_OUTPUT_CHARS = 1_000_000


@lru_cache(maxsize=1024)
def compile_template(source: str) -> jinja2.Template:
    """The compiled template for ``source`` (cached); ``jinja2.TemplateSyntaxError`` if invalid."""
    return SANDBOX.from_string(source)


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
        return _bounded(compile_template(source), scoped_context(context))
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


def has_statements(*sources: str) -> bool:
    """Whether any of ``sources`` has statements (loops): render those off the event loop."""
    return any("{%" in source for source in sources)


def _bounded(template: jinja2.Template, context: dict[str, Any]) -> str:
    """``template.render`` under the render budget: its output is read piece by piece, and
    the render stops at the first piece past the time or size allowed."""
    budget = Budget(time.monotonic() + RENDER_SECONDS)
    token = BUDGET.set(budget)
    try:
        pieces: list[str] = []
        size = 0
        for piece in template.root_render_func(template.new_context(context)):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise jinja2.exceptions.SecurityError(
                    f"the rendered text is longer than {MAX_OUTPUT_CHARS} characters"
                )
            budget.check_time()
            pieces.append(piece)
        return "".join(pieces)
    finally:
        BUDGET.reset(token)
