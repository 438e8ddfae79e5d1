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

import re
from dataclasses import dataclass
from typing import Literal

from fabflow.errors import InvalidProduct, Problem

TokenKind = Literal["number", "string", "ident", "op", "include", "use"]

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r"\$?[A-Za-z0-9_]+")
_LIBRARY = re.compile(r"(include|use)[ \t\r\n]*<")
_TWO_CHAR_OPS = ("<=", ">=", "==", "!=", "&&", "||")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
_HEX_ESCAPE = re.compile(r"x[0-7][0-9a-fA-F]")
_UNICODE_ESCAPE = re.compile(r"u[0-9a-fA-F]{4}|U[0-9a-fA-F]{6}")
_WHITESPACE = " \t\n\r\xa0"  # OpenSCAD accepts a no-break space as the editor may insert one
_CLOSERS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Token:
    """One code token; ``value`` is the decoded string, the number, or the include/use path."""

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


class _Lexer:
    """One pass over the text; ``tokens`` and ``comments`` fill as it goes."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []
        self.comments: list[Comment] = []

    def run(self) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _WHITESPACE:
                self._advance(1)
            elif self.text.startswith("//", self.pos):
                self._line_comment()
            elif self.text.startswith("/*", self.pos):
                self._block_comment()
            elif char == '"':
                self._string()
            else:
                self._code()

    def _advance(self, count: int) -> None:
        """Move ``count`` characters on, counting the newlines passed."""
        end = self.pos + count
        newlines = self.text.count("\n", self.pos, end)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rindex("\n", self.pos, end) + 1
        self.pos = end

    def _column(self) -> int:
        return self.pos - self.line_start

    def _line_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        body = self.text[self.pos + 2 : end]
        self.comments.append(Comment(body, self.line, self.line, self._column(), block=False))
        self._advance(end - self.pos)

    def _block_comment(self) -> None:
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            raise refuse(self.filename, self.line, "the comment '/*' is never closed with '*/'")
        line, column = self.line, self._column()
        body = self.text[self.pos + 2 : end]
        self._advance(end + 2 - self.pos)
        self.comments.append(Comment(body, line, self.line, column, block=True))

    def _string(self) -> None:
        start, line, column = self.pos, self.line, self._column()
        value, end = read_string(self.text, self.pos + 1)
        if end < 0:
            raise refuse(self.filename, line, "the string opened here is never closed with '\"'")
        self._advance(end - start)
        self.tokens.append(Token("string", self.text[start:end], line, column, value))

    def _code(self) -> None:
        library = _LIBRARY.match(self.text, self.pos)
        if library:
            kind: Literal["include", "use"] = "use" if library.group(1) == "use" else "include"
            self._library(kind, library.end())
            return
        number = _NUMBER.match(self.text, self.pos)
        ident = _IDENT.match(self.text, self.pos)
        # flex takes the longest match and, on a tie, the rule written first (numbers).
        if number and (not ident or len(number.group()) >= len(ident.group())):
            self._emit("number", number.group(), float(number.group()))
        elif ident:
            self._emit("ident", ident.group())
        elif self.text[self.pos : self.pos + 2] in _TWO_CHAR_OPS:
            self._emit("op", self.text[self.pos : self.pos + 2])
        else:
            self._emit("op", self.text[self.pos])

    def _emit(self, kind: TokenKind, text: str, value: str | float | None = None) -> None:
        self.tokens.append(Token(kind, text, self.line, self._column(), value))
        self._advance(len(text))

    def _library(self, kind: Literal["include", "use"], path_start: int) -> None:
        """``include <path>`` or ``use <path>``: the path runs to ``>`` on the same line."""
        line, column = self.line, self._column()
        end = path_start
        while end < len(self.text) and self.text[end] not in ">\n":
            end += 1
        if end >= len(self.text) or self.text[end] != ">":
            raise refuse(self.filename, line, f"'{kind} <' has no closing '>' on its line")
        path = self.text[path_start:end]
        self.tokens.append(Token(kind, self.text[self.pos : end + 1], line, column, path))
        self._advance(end + 1 - self.pos)


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
