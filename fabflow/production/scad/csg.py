"""The ``.csg`` file ``openscad`` exports, read into a tree of nodes.

The file is OpenSCAD's flattened program: every module call, loop and function already
evaluated, one statement per node::

    multmatrix([[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) {
        cylinder($fn = 24, $fa = 12, $fs = 2, h = 5, r1 = 2, r2 = 2, center = false);
    }

Arguments are named (a positional one is kept under ``"#0"``, ``"#1"`` ...); values are numbers,
strings, ``true``/``false``, ``undef`` and vectors. A statement may carry the modifiers ``%``
(background: not part of the model) and ``#`` (highlight: part of it).

OpenSCAD 2021 writes strings as they are, without escapes (``text = "a"b"``), so by default a
string ends at the first quote followed by ``,``, ``)`` or ``]``; a text that fools this leaves
text the grammar refuses, and the caller renders with the reference renderer instead. Newer
releases escape strings; ``escaped=True`` reads those.
"""

from __future__ import annotations

import bisect
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Value: TypeAlias = float | str | bool | tuple["Value", ...] | None

_IDENT = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_RAW_END = re.compile(r'"(?=\s*[,)\]])')
_SPACE = re.compile(r"\s*")
_NUMBERS = re.compile(r"\[[-+0-9.eE,\s\[\]]*\]")
_WORDS: dict[str, Value] = {
    "true": True,
    "false": False,
    "undef": None,
    "inf": float("inf"),
    "nan": float("nan"),
}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _tuples(value: list[Any]) -> tuple[Value, ...]:
    return tuple(_tuples(item) if isinstance(item, list) else item for item in value)


class CsgSyntaxError(ValueError):
    """The text is not a ``.csg`` file this reader understands; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Node:
    """One statement of the file: its module name, arguments, children and modifier."""

    name: str
    args: dict[str, Value] = field(default_factory=dict)
    children: tuple[Node, ...] = ()
    modifier: str = ""
    line: int = 0


def parse(text: str, *, escaped: bool = False, deadline: float | None = None) -> tuple[Node, ...]:
    """The top-level statements of a ``.csg`` file. Past ``deadline`` (``time.monotonic``)
    it raises TimeoutError; a tree nested deeper than Python's stack, RecursionError."""
    reader = _Reader(text, escaped, deadline)
    nodes = reader.statements()
    reader.skip_space()
    if reader.pos != len(text):
        raise reader.error("expected a statement")
    return nodes


class _Reader:
    """A recursive-descent reader over the text, one position at a time."""

    def __init__(self, text: str, escaped: bool, deadline: float | None) -> None:
        self.text = text
        self.pos = 0
        self.escaped = escaped
        self.deadline = deadline
        # line starts, for bisect: counting newlines per statement would be quadratic
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self) -> int:
        return bisect.bisect_left(self.newlines, self.pos) + 1

    def error(self, message: str) -> CsgSyntaxError:
        return CsgSyntaxError(message, self.line())

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r}")
        self.pos += 1

    def statements(self) -> tuple[Node, ...]:
        nodes: list[Node] = []
        while self.peek() not in ("", "}"):
            nodes.append(self.statement())
        return tuple(nodes)

    def statement(self) -> Node:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError("reading the .csg tree overran the deadline")
        modifier = ""
        while self.peek() in ("%", "#", "!", "*"):
            modifier += self.text[self.pos]
            self.pos += 1
        line = self.line()
        name = self.identifier()
        args = self.arguments()
        children: tuple[Node, ...] = ()
        if self.peek() == "{":
            self.pos += 1
            children = self.statements()
            self.expect("}")
        else:
            self.expect(";")
        return Node(name, args, children, modifier, line)

    def identifier(self) -> str:
        self.skip_space()
        match = _IDENT.match(self.text, self.pos)
        if not match:
            raise self.error("expected a name")
        self.pos = match.end()
        return match.group()

    def arguments(self) -> dict[str, Value]:
        self.expect("(")
        args: dict[str, Value] = {}
        if self.peek() == ")":
            self.pos += 1
            return args
        while True:
            key, value = self.argument(len(args))
            if key in args:
                raise self.error(f"argument {key} given twice")
            args[key] = value
            if self.peek() == ")":
                self.pos += 1
                return args
            self.expect(",")

    def argument(self, index: int) -> tuple[str, Value]:
        self.skip_space()
        match = _IDENT.match(self.text, self.pos)
        if match and match.group() not in _WORDS:
            after = _SPACE.match(self.text, match.end())
            end = after.end() if after else match.end()
            if self.text.startswith("=", end):
                self.pos = end + 1
                return match.group(), self.value()
        return f"#{index}", self.value()

    def value(self) -> Value:
        char = self.peek()
        if char == "[":
            return self.vector()
        if char == '"':
            return self.string()
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return float(match.group())
        if self.text.startswith("-inf", self.pos):
            self.pos += 4
            return float("-inf")
        word = _IDENT.match(self.text, self.pos)
        if word and word.group() in _WORDS:
            self.pos = word.end()
            return _WORDS[word.group()]
        raise self.error("expected a value")

    def vector(self) -> tuple[Value, ...]:
        numbers = self.number_vector()
        if numbers is not None:
            return numbers
        self.expect("[")
        items: list[Value] = []
        if self.peek() == "]":
            self.pos += 1
            return ()
        while True:
            items.append(self.value())
            if self.peek() == "]":
                self.pos += 1
                return tuple(items)
            self.expect(",")

    def number_vector(self) -> tuple[Value, ...] | None:
        """A vector of numbers only (matrices, points) read in one go: most of a big file."""
        match = _NUMBERS.match(self.text, self.pos)
        if not match:
            return None
        try:  # the match ends at a ']'; two vectors in a row are "extra data" to JSON
            value = json.loads(match.group(), parse_int=float)
        except ValueError:
            return None  # or a number JSON spells otherwise (7., .5): the general reader
        self.pos = match.end()
        return _tuples(value)

    def string(self) -> str:
        start = self.pos + 1
        if not self.escaped:
            match = _RAW_END.search(self.text, start)
            if not match:
                raise self.error("a string does not end")
            self.pos = match.end()
            return self.text[start : match.start()]
        return self.escaped_string(start)

    def escaped_string(self, start: int) -> str:
        out: list[str] = []
        pos = start
        while pos < len(self.text):
            char = self.text[pos]
            if char == '"':
                self.pos = pos + 1
                return "".join(out)
            if char == "\\":
                decoded, pos = self._escape(pos + 1)
                out.append(decoded)
                continue
            out.append(char)
            pos += 1
        self.pos = pos
        raise self.error("a string does not end")

    def _escape(self, pos: int) -> tuple[str, int]:
        char = self.text[pos : pos + 1]
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char], pos + 1
        width = {"x": 2, "u": 4, "U": 6}.get(char)
        digits = self.text[pos + 1 : pos + 1 + width] if width else ""
        if width and re.fullmatch(r"[0-9A-Fa-f]+", digits) and len(digits) == width:
            return chr(int(digits, 16)), pos + 1 + width
        self.pos = pos
        raise self.error(f"unknown escape \\{char}")
