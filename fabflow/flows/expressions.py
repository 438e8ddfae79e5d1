"""The expression language of a choice's ``when``: a sandboxed Jinja expression, a subset.

What an expression may use (anything else is refused when the flow is validated):

- literals: strings, numbers, ``true``/``false``/``none``, lists ``["BE", "NL"]``;
- paths into the context: ``order.data.country``, ``order.lines[0].parameters.material``,
  ``steps.mes.response.body.jobId``, ``steps["my-step"].response.status``;
- comparisons ``== != < <= > >=``, ``in`` and ``not in``, ``and``, ``or``, ``not``,
  arithmetic ``+ - * / // %`` (no ``**``), and ``a if cond else b``;
- the filters ``lower upper trim length int float string abs round default first last``;
- the tests ``is defined``, ``is undefined``, ``is none``, ``is number``, ``is string``,
  ``is true``, ``is false``.

An expression is compiled once (cached) in the same sandbox as the templates
(``fabflow.flows.sandbox``) and evaluated to a truth value. A path that the order does not have
is an error (not a silent false): use ``is defined`` or ``| default(...)`` to allow it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser

from fabflow.flows.sandbox import SANDBOX, scoped_context

MAX_EXPRESSION_LENGTH = 2000
ALLOWED_FILTERS = frozenset(
    {
        "lower",
        "upper",
        "trim",
        "length",
        "int",
        "float",
        "string",
        "abs",
        "round",
        "default",
        "first",
        "last",
    }
)
ALLOWED_TESTS = frozenset(
    {"defined", "undefined", "none", "number", "string", "true", "false", "boolean"}
)
_ALLOWED_NODES = (
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Const,
    nodes.List,
    nodes.Tuple,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Concat,
)
_WORDS: dict[type[nodes.Node], str] = {
    nodes.Pow: "the power operator **",
    nodes.Call: "calling a function or method",
    nodes.Slice: "slices",
    nodes.Dict: "object literals",
}


class ExpressionError(Exception):
    """An expression that does not parse, or uses what the language does not have."""


def parse(source: str) -> nodes.Expr:
    """The syntax tree of ``source``; ``ExpressionError`` when it is not one valid expression
    of the subset (the message says what and where)."""
    if not source.strip():
        raise ExpressionError('is empty: write a test such as order.data.country == "BE"')
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        parser = Parser(SANDBOX, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise ExpressionError(f"unexpected {token.value!r} after the expression")
    except jinja2.TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.message}") from exc
    _check_subset(tree)
    return tree


def _check_subset(tree: nodes.Node) -> None:
    for node in (tree, *tree.find_all(nodes.Node)):
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise ExpressionError(
                f'the filter "{node.name}" is not allowed; allowed: {_listed(ALLOWED_FILTERS)}'
            )
        if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            raise ExpressionError(
                f'the test "is {node.name}" is not allowed; allowed: {_listed(ALLOWED_TESTS)}'
            )
        if isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs):
            raise ExpressionError("*args and **kwargs are not allowed")
        if not isinstance(node, _ALLOWED_NODES):
            what = _WORDS.get(type(node), f"{type(node).__name__} expressions")
            raise ExpressionError(f"{what} is not allowed in a choice's expression")


def _listed(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))


Evaluator = Callable[[Mapping[str, Any]], bool]


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Evaluator:
    """A function of the context that returns the expression's truth value (cached by
    source). Raises ``ExpressionError`` for an invalid expression; the function raises
    ``ExpressionError`` when evaluating fails (a missing path, a comparison of a string with a
    number ...)."""
    parse(source)
    compiled = SANDBOX.compile_expression(source, undefined_to_none=False)

    def evaluate(context: Mapping[str, Any]) -> bool:
        try:
            return bool(compiled(scoped_context(context)))
        except jinja2.UndefinedError as exc:
            raise ExpressionError(exc.message or "a name is undefined") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise ExpressionError(f"not allowed: {exc}") from exc
        except Exception as exc:  # a comparison of str and int, a division by zero ...
            raise ExpressionError(f"{type(exc).__name__}: {exc}") from exc

    return evaluate
