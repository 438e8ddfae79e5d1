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
    direct = _direct(parse(source))
    if direct is not None:
        return direct
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


# --- the common subset, evaluated without Jinja ---------------------------------------------
#
# Most rules are paths compared with literals (``order.data.country in ["BE", "NL"]``). Those
# are evaluated by closures built from the checked syntax tree: no template context to set up
# per call, so a choice costs about a microsecond. Anything else (filters, arithmetic, ``if``)
# goes through Jinja's sandbox as above. Both say the same thing for a missing path.

_Value = Callable[[Mapping[str, Any]], Any]
_MISSING = object()
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


class _NotDirect(Exception):
    """The tree uses what only Jinja evaluates."""


def _direct(tree: nodes.Expr) -> Evaluator | None:
    try:
        value = _build(tree)
    except _NotDirect:
        return None

    def evaluate(context: Mapping[str, Any]) -> bool:
        try:
            return bool(value(context))
        except ExpressionError:
            raise
        except Exception as exc:  # a comparison of str and int ...
            raise ExpressionError(f"{type(exc).__name__}: {exc}") from exc

    return evaluate


def _build(node: nodes.Node) -> _Value:
    if isinstance(node, nodes.Const):
        constant = node.value
        return lambda _c: constant
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_build(item) for item in node.items]
        return lambda c: [item(c) for item in items]
    if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
        path = _path(node)
        return lambda c: _lookup(c, path, strict=True)
    if isinstance(node, nodes.Not):
        inner = _build(node.node)
        return lambda c: not inner(c)
    if isinstance(node, nodes.And):
        left, right = _build(node.left), _build(node.right)
        return lambda c: left(c) and right(c)
    if isinstance(node, nodes.Or):
        left, right = _build(node.left), _build(node.right)
        return lambda c: left(c) or right(c)
    if isinstance(node, nodes.Compare):
        return _compare(node)
    if isinstance(node, nodes.Test) and node.name in ("defined", "undefined") and not node.args:
        path = _path(node.node)
        wanted = node.name == "defined"
        return lambda c: (_lookup(c, path, strict=False) is not _MISSING) is wanted
    raise _NotDirect


def _compare(node: nodes.Compare) -> _Value:
    first = _build(node.expr)
    steps = [(_COMPARE[op.op], _build(op.expr)) for op in node.ops if op.op in _COMPARE]
    if len(steps) != len(node.ops):
        raise _NotDirect
    if len(steps) == 1:  # the usual ``a == b``: no loop
        ((test, operand),) = steps
        return lambda c: test(first(c), operand(c))

    def compare(c: Mapping[str, Any]) -> bool:
        left = first(c)
        for test, operand in steps:
            right = operand(c)
            if not test(left, right):
                return False
            left = right
        return True

    return compare


def _path(node: nodes.Node) -> tuple[str | int, ...]:
    """``order.lines[0].parameters`` as ``("order", "lines", 0, "parameters")``."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        return (*_path(node.node), node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
        if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
            return (*_path(node.node), key)
    raise _NotDirect


def _lookup(context: Mapping[str, Any], path: tuple[str | int, ...], *, strict: bool) -> Any:
    """The value at ``path``; a missing one is ``_MISSING``, or with ``strict`` an error
    that names it as the templates do ("'order.data.rush' is undefined")."""
    name = str(path[0])  # a Name: always a string
    if name not in context:
        if strict:
            raise ExpressionError(f"{name!r} is undefined")
        return _MISSING
    value = context[name]
    if value is None:
        value = {}  # ``error`` outside an error path, as in templates
    for depth, key in enumerate(path[1:], 1):
        if not _has(value, key):
            if strict:
                raise ExpressionError(f"{_shown(path[: depth + 1])!r} is undefined")
            return _MISSING
        value = value[key]
    return value


def _shown(path: tuple[str | int, ...]) -> str:
    """``("order", "lines", 0)`` as ``order.lines[0]``."""
    shown = str(path[0])
    for key in path[1:]:
        shown = f"{shown}[{key}]" if isinstance(key, int) else f"{shown}.{key}"
    return shown


def _has(value: Any, key: str | int) -> bool:
    if isinstance(value, dict):
        return isinstance(key, str) and key in value
    return isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)


# --- what of the order an expression reads ---------------------------------------------------


@lru_cache(maxsize=4096)
def order_keys(source: str) -> frozenset[str] | None:
    """The keys of the order document that ``source`` reads (``order.data.country`` reads
    ``data``), so that a worker may read those alone; None when that cannot be told (the
    expression uses ``order`` whole, or keys it at run time, or does not parse).

    ``steps`` counts as reading the order's ``files``: a step's files are shown as the
    order's are."""
    try:
        tree = parse(source)
    except ExpressionError:
        return None
    keys: set[str] = set()
    keyed: set[int] = set()  # the ``order`` names read through a constant key
    for node in (tree, *tree.find_all((nodes.Getattr, nodes.Getitem))):
        base = getattr(node, "node", None)
        if not (isinstance(base, nodes.Name) and base.name == "order"):
            continue
        key = _key(node)
        if key is None:
            return None
        keys.add(key)
        keyed.add(id(base))
    names = [n for n in (tree, *tree.find_all(nodes.Name)) if isinstance(n, nodes.Name)]
    if any(n.name == "order" and id(n) not in keyed for n in names):
        return None
    if any(n.name == "steps" for n in names):
        keys.add("files")
    return frozenset(keys)


def _key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value if isinstance(node.arg.value, str) else None
    return None
