"""A model's top-level assignments and the literal values OpenSCAD can read without running it.

OpenSCAD keeps one entry per top-level variable: a later assignment replaces the value *and the
line* of the first one, but the variable keeps its first place in the list (``handle_assignment``
in 2021.01's ``src/parser.y``). A value is a literal when it is built only from numbers,
strings, ``true``/``false``/``undef``, unary ``-``/``+``/``!``, parentheses, vectors and ranges
(``isLiteral`` in ``src/expr.cc``); anything else (a name, an operator, a call) is an expression,
and the Customizer does not offer it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from fabflow.production.scad.lexer import Source, Token, refuse


@dataclass(frozen=True)
class ScadRange:
    """An OpenSCAD range ``[begin:step:end]`` (``step`` is 1 when it is not written)."""

    begin: float
    step: float
    end: float


# A literal's value: number, string, boolean, undef (None), vector or range.
ScadValue = Union[float, str, bool, None, list["ScadValue"], ScadRange]  # noqa: UP007


class _NotLiteral:
    """The value of an expression that is not a literal."""

    def __repr__(self) -> str:
        return "NOT_LITERAL"


NOT_LITERAL = _NotLiteral()


@dataclass(frozen=True)
class Assignment:
    """A top-level variable as OpenSCAD keeps it: its last assignment's line and value."""

    name: str
    line: int
    value: ScadValue | _NotLiteral


def first_brace_line(source: Source) -> int | None:
    """The line of the first ``{`` in the code: the Customizer reads no parameter from there
    on (``getLineToStop`` in OpenSCAD's ``comment.cpp``), so modules come after parameters."""
    return next((t.line for t in source.tokens if t.kind == "op" and t.text == "{"), None)


def top_level_assignments(source: Source, filename: str) -> list[Assignment]:
    """Every top-level variable in first-assignment order, each with its last assignment."""
    found: dict[str, Assignment] = {}
    tokens = source.tokens
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if _starts_assignment(tokens, index):
            end = _statement_end(tokens, index + 2)
            if end >= len(tokens):
                raise refuse(filename, token.line, f"the assignment to {token.text} has no ';'")
            value = literal_value(tokens[index + 2 : end])
            found[token.text] = Assignment(token.text, token.line, value)
            index = end + 1
        elif token.kind in ("include", "use"):
            index += 1
        else:
            index = _skip_statement(tokens, index)
    return list(found.values())


def _starts_assignment(tokens: Sequence[Token], index: int) -> bool:
    after = index + 1
    return (
        tokens[index].kind == "ident"
        and after < len(tokens)
        and tokens[after].kind == "op"
        and tokens[after].text == "="
    )


def _statement_end(tokens: Sequence[Token], index: int) -> int:
    """The index of the ``;`` that ends the statement, at this bracket depth."""
    depth = 0
    for position in range(index, len(tokens)):
        token = tokens[position]
        if token.kind != "op":
            continue
        if token.text in "([{":
            depth += 1
        elif token.text in ")]}":
            depth -= 1
        elif token.text == ";" and depth == 0:
            return position
    return len(tokens)


def _skip_statement(tokens: Sequence[Token], index: int) -> int:
    """The index after a statement that is not an assignment: after its ``;`` or after the
    ``}`` that closes its block (``module m() {...}``, ``if (...) {...}``)."""
    depth = 0
    for position in range(index, len(tokens)):
        token = tokens[position]
        if token.kind != "op":
            continue
        if token.text in "([{":
            depth += 1
        elif token.text in ")]}":
            depth -= 1
            if depth == 0 and token.text == "}":
                return position + 1
        elif token.text == ";" and depth == 0:
            return position + 1
    return len(tokens)


def literal_value(tokens: Sequence[Token]) -> ScadValue | _NotLiteral:
    """The value of an expression made only of literals, or ``NOT_LITERAL``."""
    parser = _LiteralParser(tokens)
    try:
        value = parser.expression()
    except _NotALiteral:
        return NOT_LITERAL
    return value if parser.at_end() else NOT_LITERAL


class _NotALiteral(Exception):
    """Raised inside the literal parser at the first token a literal cannot have."""


_KEYWORDS: dict[str, ScadValue] = {"true": True, "false": False, "undef": None}


class _LiteralParser:
    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos == len(self.tokens)

    def _peek(self) -> str:
        if self.at_end():
            raise _NotALiteral
        token = self.tokens[self.pos]
        return token.text if token.kind == "op" else ""

    def _take(self) -> Token:
        if self.at_end():
            raise _NotALiteral
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _expect(self, text: str) -> None:
        if self._peek() != text:
            raise _NotALiteral
        self.pos += 1

    def expression(self) -> ScadValue:
        """A unary expression over a primary: a binary operator after it ends the literal."""
        operator = self._peek()
        if operator in ("-", "+", "!"):
            self.pos += 1
            return _unary(operator, self.expression())
        return self._primary()

    def _primary(self) -> ScadValue:
        token = self._take()
        if token.kind in ("number", "string"):
            assert token.value is not None
            return token.value
        if token.kind == "ident" and token.text in _KEYWORDS:
            return _KEYWORDS[token.text]
        if token.kind == "op" and token.text == "(":
            value = self.expression()
            self._expect(")")
            return value
        if token.kind == "op" and token.text == "[":
            return self._bracket()
        raise _NotALiteral

    def _bracket(self) -> ScadValue:
        """After ``[``: an empty vector, a range or a vector (trailing commas allowed)."""
        if self._peek() in (",", "]"):
            self._skip_commas()
            self._expect("]")
            return []
        first = self.expression()
        if self._peek() == ":":
            return self._range(first)
        items = [first]
        while self._peek() == ",":
            if self._skip_commas() and self._peek() == "]":
                break
            items.append(self.expression())
        self._expect("]")
        return items

    def _skip_commas(self) -> bool:
        skipped = False
        while not self.at_end() and self._peek() == ",":
            self.pos += 1
            skipped = True
        return skipped

    def _range(self, begin: ScadValue) -> ScadValue:
        self._expect(":")
        second = self.expression()
        if self._peek() == ":":
            self.pos += 1
            third = self.expression()
            self._expect("]")
            return _make_range(begin, second, third)
        self._expect("]")
        return _make_range(begin, 1.0, second)


def _make_range(begin: ScadValue, step: ScadValue, end: ScadValue) -> ScadValue:
    numbers = [begin, step, end]
    if not all(isinstance(n, float) and not isinstance(n, bool) for n in numbers):
        return None  # OpenSCAD evaluates a range of non-numbers to undef
    return ScadRange(float(begin), float(step), float(end))  # type: ignore[arg-type]


def _unary(operator: str, value: ScadValue) -> ScadValue:
    if operator == "+":
        return value
    if operator == "!":
        return not truthy(value)
    if isinstance(value, float):
        return -value
    if isinstance(value, list) and all(_is_number(v) for v in value):
        return [-v for v in value if isinstance(v, float)]
    return None


def _is_number(value: ScadValue) -> bool:
    return isinstance(value, float) and not isinstance(value, bool)


def truthy(value: ScadValue) -> bool:
    """OpenSCAD's truth: non-zero numbers, non-empty strings and vectors, any range."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str | list):
        return len(value) > 0
    return isinstance(value, ScadRange)
