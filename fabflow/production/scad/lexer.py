"""OpenSCAD source as tokens: enough to read a model's top level without a full parser.

``tokenize`` follows OpenSCAD 2021.01's lexer (``src/lexer.l``) where it matters for reading
parameters and file references: comments, strings with their escapes, numbers (``1``, ``1.``,
``.5``, ``1e-3``), identifiers (``$fn``), ``include <...>`` / ``use <...>`` (read by the lexer,
so they count anywhere), and operators. Comments are kept apart from the code tokens, with
their lines, because the Customizer reads its annotations from them.

A source that does not tokenize (an unterminated string, comment or include) or whose brackets
do not balance is refused with ``InvalidProduct`` naming the file and line; everything else is
left to the ``openscad`` program, which reports its own errors when the model renders.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from fabflow.errors import InvalidProduct, Problem

TokenKind = Literal["number", "string", "ident", "op", "include", "use"]

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r"\$?[A-Za-z0-9_]+")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
_HEX_ESCAPE = re.compile(r"x[0-7][0-9a-fA-F]")
_UNICODE_ESCAPE = re.compile(r"u[0-9a-fA-F]{4}|U[0-9a-fA-F]{6}")
_CLOSERS = {")": "(", "]": "[", "}": "{"}


class Token(NamedTuple):
    """One code token; ``value`` is the decoded string, the number, or the include/use path.

    (A named tuple: a large model has a million of them, and a frozen dataclass builds slower.)
    """

    kind: TokenKind
    text: str
    line: int
    column: int
    value: str | float | None = None


@dataclass(frozen=True)
class Comment:
    """One comment: ``text`` without its ``//`` or ``/* */``; ``block`` for ``/* */``."""

    text: str
    line: int
    end_line: int
    column: int
    block: bool


@dataclass(frozen=True)
class Source:
    """A tokenized model: its code tokens and its comments, both in source order."""

    tokens: tuple[Token, ...]
    comments: tuple[Comment, ...]


def tokenize(text: str, filename: str = "model.scad") -> Source:
    """The tokens and comments of ``text``; raises ``InvalidProduct`` with the line when the
    source does not tokenize or its brackets do not balance."""
    lexer = _Lexer(text.replace("\r\n", "\n"), filename)
    lexer.run()
    source = Source(tuple(lexer.tokens), tuple(lexer.comments))
    check_brackets(source.tokens, filename)
    return source


def refuse(filename: str, line: int, message: str) -> InvalidProduct:
    """An ``InvalidProduct`` for one problem at ``filename:line``."""
    problem = Problem(pointer=f"{filename}:{line}", message=f"line {line}: {message}")
    return InvalidProduct(f"{filename} cannot be read: line {line}: {message}", [problem])


def check_brackets(tokens: tuple[Token, ...], filename: str) -> None:
    """Raise ``InvalidProduct`` at the first bracket that does not pair up."""
    stack: list[Token] = []
    for token in tokens:
        if token.kind != "op":
            continue
        if token.text in "([{":
            stack.append(token)
        elif token.text in _CLOSERS:
            if not stack:
                raise refuse(filename, token.line, f"'{token.text}' closes nothing")
            opener = stack.pop()
            if opener.text != _CLOSERS[token.text]:
                message = f"'{token.text}' closes the '{opener.text}' opened on line {opener.line}"
                raise refuse(filename, token.line, message)
    if stack:
        raise refuse(filename, stack[-1].line, f"'{stack[-1].text}' is never closed")


# One alternative per way a token starts; a no-break space counts as space, as in OpenSCAD
# (its editor may put one in).
_MASTER = re.compile(
    r"(?P<space>[ \t\n\r\xa0]+)"
    r"|(?P<line>//)"
    r"|(?P<block>/\*)"
    r'|(?P<string>")'
    r"|(?P<library>(?:include|use)[ \t\r\n]*<)"
    r"|(?P<ident>\$[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<numeric>[0-9.])"
    r"|(?P<op><=|>=|==|!=|&&|\|\||.)",
    re.DOTALL,
)


class _Lexer:
    """One pass over the text; ``tokens`` and ``comments`` fill as it goes."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.tokens: list[Token] = []
        self.comments: list[Comment] = []

    def where(self, pos: int) -> tuple[int, int]:
        """The 1-based line and 0-based column of ``pos``."""
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1]

    def run(self) -> None:
        pos, text = 0, self.text
        while pos < len(text):
            match = _MASTER.match(text, pos)
            assert match is not None  # the last alternative matches any character
            kind = match.lastgroup
            if kind == "space":
                pos = match.end()
            elif kind == "line":
                pos = self._line_comment(pos)
            elif kind == "block":
                pos = self._block_comment(pos)
            elif kind == "string":
                pos = self._string(pos)
            elif kind == "library":
                pos = self._library(pos, match)
            elif kind == "numeric":
                pos = self._numeric(pos)
            else:
                self._emit("ident" if kind == "ident" else "op", pos, match.group())
                pos = match.end()

    def _emit(self, kind: TokenKind, pos: int, text: str, value: str | float | None = None) -> None:
        line, column = self.where(pos)
        self.tokens.append(Token(kind, text, line, column, value))

    def _line_comment(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        end = len(self.text) if end < 0 else end
        line, column = self.where(pos)
        self.comments.append(Comment(self.text[pos + 2 : end], line, line, column, block=False))
        return end

    def _block_comment(self, pos: int) -> int:
        line, column = self.where(pos)
        end = self.text.find("*/", pos + 2)
        if end < 0:
            raise refuse(self.filename, line, "the comment '/*' is never closed with '*/'")
        end_line, _ = self.where(end)
        body = self.text[pos + 2 : end]
        self.comments.append(Comment(body, line, end_line, column, block=True))
        return end + 2

    def _string(self, pos: int) -> int:
        value, end = read_string(self.text, pos + 1)
        if end < 0:
            line, _ = self.where(pos)
            raise refuse(self.filename, line, "the string opened here is never closed with '\"'")
        self._emit("string", pos, self.text[pos:end], value)
        return end

    def _numeric(self, pos: int) -> int:
        """A number or an identifier that starts with a digit (``2d``), or a lone ``.``."""
        number = _NUMBER.match(self.text, pos)
        ident = _IDENT.match(self.text, pos)
        # flex takes the longest match and, on a tie, the rule written first (numbers).
        if number and (not ident or len(number.group()) >= len(ident.group())):
            self._emit("number", pos, number.group(), float(number.group()))
            return number.end()
        if ident:
            self._emit("ident", pos, ident.group())
            return ident.end()
        self._emit("op", pos, ".")
        return pos + 1

    def _library(self, pos: int, match: re.Match[str]) -> int:
        """``include <path>`` or ``use <path>``: the path runs to ``>`` on the same line."""
        kind: Literal["include", "use"] = "use" if match.group().startswith("use") else "include"
        end = match.end()
        while end < len(self.text) and self.text[end] not in ">\n":
            end += 1
        if end >= len(self.text) or self.text[end] != ">":
            line, _ = self.where(pos)
            raise refuse(self.filename, line, f"'{kind} <' has no closing '>' on its line")
        self._emit(kind, pos, self.text[pos : end + 1], self.text[match.end() : end])
        return end + 1


def read_string(text: str, pos: int) -> tuple[str, int]:
    """Decode the string whose body starts at ``pos`` (after its ``"``), OpenSCAD's way.

    Returns the value and the position after the closing quote, or ``("", -1)`` when the
    string never closes. A raw newline inside a string is not part of it (as in OpenSCAD),
    and an unknown escape keeps only the character after the backslash.
    """
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":
            decoded, pos = _escape(text, pos + 1)
            out.append(decoded)
            continue
        if char not in "\n\r":
            out.append(char)
        pos += 1
    return "", -1


def _escape(text: str, pos: int) -> tuple[str, int]:
    """The character an escape stands for, and the position after it (``pos`` is after ``\\``)."""
    if pos >= len(text):
        return "", pos
    if text[pos] in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[text[pos]], pos + 1
    if hexa := _HEX_ESCAPE.match(text, pos):
        code = int(hexa.group()[1:], 16)
        return (chr(code) if code else " "), hexa.end()
    if uni := _UNICODE_ESCAPE.match(text, pos):
        code = int(uni.group()[1:], 16)
        return (chr(code) if code <= 0x10FFFF else ""), uni.end()
    return "", pos
