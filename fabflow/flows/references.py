"""What a template or an expression reads, and whether the context of its step has it.

A template's names are found in Jinja's syntax tree (``jinja2.meta`` gives only root names;
``order.custmer.name`` needs the whole chain of ``Getattr``/``Getitem`` nodes). Each chain is
checked against a *shape*: what the context holds at that point of the flow (the order
document, the outputs of the steps that can have run before, ``error`` on error paths ...).
Free-form parts (``order.data``, a line's ``parameters``, a REST answer's ``body``) accept any
key below them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from fabflow.flows.problems import suggest
from fabflow.flows.sandbox import SANDBOX


class Shape:
    """What a value of the context looks like, as far as validation knows."""


class _Any(Shape):
    """Free-form: any key or index below it is accepted."""


@dataclass(frozen=True, eq=False)
class Leaf(Shape):
    """A string, number, boolean or null: it has no keys (but a string has its methods)."""

    kind: str = "a string"


@dataclass(frozen=True, eq=False)
class Obj(Shape):
    """An object with known keys; ``what`` names it in messages (``the order document``)."""

    fields: Mapping[str, Shape]
    what: str = "it"
    missing: Mapping[str, str] = field(default_factory=dict)  # key -> why it is not here


@dataclass(frozen=True, eq=False)
class Seq(Shape):
    """A list whose items all look like ``item``."""

    item: Shape


class Lazy(Shape):
    """A shape that works out its keys when asked (the steps before a step, in a big flow)."""

    def child(self, token: object) -> Shape | str | None:
        """The shape under ``token``; None: anything goes; a string: why it is not there."""
        raise NotImplementedError


ANY = _Any()
TEXT = Leaf()
NUMBER = Leaf("a number")
DYNAMIC = object()  # an index or key computed at run time: not checked

_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
_LIST_METHODS = frozenset({"index", "count"})
_STR_METHODS = frozenset(n for n in dir(str) if not n.startswith("_"))

Token = str | int | object


@dataclass(frozen=True)
class Reference:
    """A chain read by a template: ``root`` then ``tokens`` (keys, indexes or ``DYNAMIC``)."""

    root: str
    tokens: tuple[Token, ...]
    lineno: int

    def text(self, upto: int | None = None) -> str:
        """The chain as written (``order.lines[0].parameters``), up to ``upto`` tokens."""
        out = self.root
        for token in self.tokens[:upto]:
            if token is DYNAMIC:
                out += "[...]"
            elif isinstance(token, int):
                out += f"[{token}]"
            elif isinstance(token, str) and token.isidentifier():
                out += f".{token}"
            else:
                out += f"[{token!r}]"
        return out


# -- finding what a template reads -------------------------------------------------------------

_Scope = Mapping[str, "Reference | None"]  # local name -> the chain it stands for, or unknown


def references(tree: nodes.Node) -> list[Reference]:
    """Every context chain ``tree`` reads, loop variables resolved to the lists they walk."""
    found: list[Reference] = []
    _visit(tree, {}, found)
    return found


def _visit(node: nodes.Node, scope: _Scope, found: list[Reference]) -> None:
    if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
        _chain(node, scope, found)
    elif isinstance(node, nodes.Test) and node.name in ("defined", "undefined"):
        # ``x is defined`` asks the question validation would refuse: it is the way to read
        # what only some paths set.
        for child in node.iter_child_nodes(exclude=("node",)):
            _visit(child, scope, found)
    elif isinstance(node, nodes.For):
        _for(node, scope, found)
    elif isinstance(node, nodes.Assign | nodes.AssignBlock):
        for child in node.iter_child_nodes(exclude=("target",)):
            _visit(child, scope, found)
        if isinstance(scope, dict):  # {% set %} binds for the rest of its block
            scope.update(dict.fromkeys(_stored(node.target)))
    elif isinstance(node, nodes.Macro | nodes.CallBlock | nodes.With):
        _bound(node, scope, found)
    else:
        for child in node.iter_child_nodes():
            _visit(child, scope, found)


def _for(node: nodes.For, scope: _Scope, found: list[Reference]) -> None:
    _visit(node.iter, scope, found)
    item = _as_reference(node.iter, scope)
    inner: dict[str, Reference | None] = {**scope, "loop": None}
    names = _stored(node.target)
    for name in names:
        # One name walks the items; a tuple target (k, v) unpacks them: not followed.
        inner[name] = _extend(item, DYNAMIC) if item is not None and len(names) == 1 else None
    for child in (*node.body, *([node.test] if node.test else [])):
        _visit(child, inner, found)
    for child in node.else_:
        _visit(child, scope, found)


def _bound(node: nodes.Node, scope: _Scope, found: list[Reference]) -> None:
    inner: dict[str, Reference | None] = {**scope, "caller": None, "varargs": None}
    if isinstance(node, nodes.With):
        for value in node.values:
            _visit(value, scope, found)
        targets: list[nodes.Node] = list(node.targets)
    else:
        for default in node.defaults:  # type: ignore[attr-defined]
            _visit(default, scope, found)
        targets = list(node.args)  # type: ignore[attr-defined]
        if isinstance(node, nodes.CallBlock):
            _visit(node.call, scope, found)
    for target in targets:
        inner.update(dict.fromkeys(_stored(target)))
    for child in node.body:  # type: ignore[attr-defined]
        _visit(child, inner, found)


def _stored(target: nodes.Node) -> list[str]:
    return [n.name for n in target.find_all(nodes.Name)] + (
        [target.name] if isinstance(target, nodes.Name) else []
    )


def _extend(ref: Reference, *tokens: Token) -> Reference:
    return Reference(ref.root, (*ref.tokens, *tokens), ref.lineno)


def _unroll(node: nodes.Node, found: list[Reference], scope: _Scope) -> tuple[Any, list[Token]]:
    """The chain's base node and its tokens (outermost last); dynamic keys are visited."""
    tokens: list[Token] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            tokens.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str | int):
            tokens.append(node.arg.value)
        else:
            _visit(node.arg, scope, found)
            tokens.append(DYNAMIC)
        node = node.node
    tokens.reverse()
    return node, tokens


def _as_reference(node: nodes.Node, scope: _Scope) -> Reference | None:
    base, tokens = _unroll(node, [], scope)
    if not isinstance(base, nodes.Name):
        return None
    if base.name in scope:
        local = scope[base.name]
        return None if local is None else _extend(local, *tokens)
    return Reference(base.name, tuple(tokens), node.lineno)


def _chain(node: nodes.Node, scope: _Scope, found: list[Reference]) -> None:
    base, tokens = _unroll(node, found, scope)
    if not isinstance(base, nodes.Name):
        _visit(base, scope, found)
        return
    if base.name in scope:
        local = scope[base.name]
        if local is not None:
            found.append(Reference(local.root, (*local.tokens, *tokens), node.lineno))
        return
    found.append(Reference(base.name, tuple(tokens), node.lineno))


# -- checking them against the context ---------------------------------------------------------


def check(ref: Reference, context: Obj) -> str | None:
    """Why ``ref`` cannot be read from ``context``, or None when it can (or cannot be told)."""
    if ref.root not in context.fields:
        if ref.root in SANDBOX.globals:
            return None
        why = context.missing.get(ref.root)
        if why is not None:
            return f"{ref.text()}: {why}"
        hint = suggest(ref.root, list(context.fields))
        names = ", ".join(context.fields)
        return f'{ref.text()}: there is no "{ref.root}" here{hint}; the context has {names}'
    shape = context.fields[ref.root]
    for i, token in enumerate(ref.tokens):
        step = _step(shape, token)
        if isinstance(step, str):
            return f"{ref.text()}: {ref.text(i)} {step}"
        if step is None:
            return None
        shape = step
    return None


def _step(shape: Shape, token: Token) -> Shape | str | None:
    """The shape under ``token``; None: anything goes from here; a string: why it fails."""
    if shape is ANY or (token is DYNAMIC and not isinstance(shape, Seq)):
        return None
    if isinstance(shape, Lazy):
        return shape.child(token)
    if isinstance(shape, Obj):
        return _key(shape, token)
    if isinstance(shape, Seq):
        if isinstance(token, int) or token is DYNAMIC:
            return shape.item
        return None if token in _LIST_METHODS else f'is a list: it has no "{token}" (use [0])'
    if isinstance(token, str) and token in _STR_METHODS:
        return None
    assert isinstance(shape, Leaf)
    return f"is {shape.kind}: it has no {_shown(token)}"


def _key(shape: Obj, token: Token) -> Shape | str | None:
    if isinstance(token, str) and token in shape.fields:
        return shape.fields[token]
    if isinstance(token, str) and token in _DICT_METHODS:
        return None
    why = shape.missing.get(token) if isinstance(token, str) else None
    if why is not None:
        return why
    if not shape.fields:
        return f"has no {_shown(token)}: {shape.what} has no keys"
    hint = suggest(token, list(shape.fields)) if isinstance(token, str) else ""
    return f"has no {_shown(token)}{hint}"


def _shown(token: Token) -> str:
    return f"[{token}]" if isinstance(token, int) else f'"{token}"'


def walk_strings(value: Any, *path: str | int) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a JSON value, with its path (keys and indexes)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, *path, str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_strings(item, *path, i)
