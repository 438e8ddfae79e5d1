"""Sandboxed Jinja2 templates for step options (the email subject and message).

Templates see only the documented context (``order``, ``steps``, ``error``, ``step``, ``flow``,
``secrets``: plain JSON data) in the sandbox of ``fabflow.flows.sandbox``: no attributes
starting with ``_``, no methods that change data, no code execution. An unknown variable is an
error of the step that names the variable (``'order.custmer' is undefined``), never a silent
blank. Autoescape is off: mail is plain text.
Compiled templates are cached by source text, so a flow's template compiles once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

from fabflow.errors import PermanentStepError
from fabflow.flows.sandbox import SANDBOX, scoped_context


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
        template = compile_template(source)
        return template.render(scoped_context(context))
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
