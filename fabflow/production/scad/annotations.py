"""The Customizer's comments: a variable's annotation, its description and its tab.

The rules are OpenSCAD's (2021.01, ``src/comment.cpp``, ``src/comment_lexer.l`` and
``src/comment_parser.y``), so that a model shows the same parameters here as in its editor:

- the annotation is the ``//`` comment on the assignment's line, unless two ``;`` come before it
  on that line; it is one of ``12``, ``word``, ``[a, b, c]``, ``[v:label, ...]``,
  ``[min:max]`` or ``[min:step:max]``. Anything else (``// [0:10] mm``) reads as no annotation.
  Words are runs of words and numbers joined by one space; ``(`` and ``)`` are dropped;
  ``"quoted"`` words may hold ``,`` and ``:``;
- the description is the ``//`` comment filling the line above, when it starts at column 0;
- the tab is set by a one-line ``/* ... */`` comment on an earlier line: the texts of its
  ``[...]`` joined by ``-`` (``""`` when it has none, as OpenSCAD does).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Union

from fabflow.production.scad.lexer import Comment, Source
from fabflow.production.scad.toplevel import ScadRange

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r'[^()\[\] ,":\t]+')
_GROUP = re.compile(r"\[(.*?)\]")


@dataclass(frozen=True)
class Labelled:
    """One ``value:label`` item of a dropdown annotation."""

    value: float | str
    label: float | str


# An annotation as read: "" when there is none or it does not parse.
AnnotationItem = Union[float, str, Labelled]  # noqa: UP007
Annotation = Union[float, str, ScadRange, list[AnnotationItem]]  # noqa: UP007


class CommentIndex:
    """A source's comments by line, so each variable's are found without a scan."""

    def __init__(self, source: Source) -> None:
        self.line_comments = {c.line: c for c in source.comments if not c.block}
        self.semicolons: dict[int, list[int]] = {}
        for token in source.tokens:
            if token.kind == "op" and token.text == ";":
                self.semicolons.setdefault(token.line, []).append(token.column)
        self.groups = group_comments(source.comments)
        self.group_lines = [line for line, _ in self.groups]

    def annotation(self, line: int) -> str:
        """The text of the ``//`` comment on ``line`` that annotates an assignment there."""
        comment = self.line_comments.get(line)
        if comment is None:
            return ""
        before = sum(1 for column in self.semicolons.get(line, ()) if column < comment.column)
        return "" if before > 1 else comment.text

    def description(self, line: int) -> str:
        """The description of the variable assigned on ``line``: the comment above it, when
        it starts at column 0; each ``//`` in it reads as a space (as OpenSCAD reads it)."""
        above = self.line_comments.get(line - 1)
        if above is None or above.column != 0:
            return ""
        return above.text.lstrip(" \t").replace("//", " ").rstrip()

    def tab(self, line: int) -> str | None:
        """The tab of the variable on ``line``: the last group comment on an earlier line
        (None before any)."""
        index = bisect.bisect_left(self.group_lines, line)
        return self.groups[index - 1][1] if index else None


def group_comments(comments: tuple[Comment, ...]) -> list[tuple[int, str]]:
    """``(line, tab name)`` for every one-line ``/* */`` comment, in order."""
    return [
        (c.line, "-".join(_GROUP.findall(c.text)))
        for c in comments
        if c.block and c.line == c.end_line
    ]


def parse_annotation(text: str) -> Annotation:
    """The value of an annotation comment, or ``""`` when it is empty or does not parse."""
    try:
        tokens = _comment_tokens(text)
        return _Parser(tokens).annotation() if tokens else ""
    except _NoAnnotation:
        return ""


class _NoAnnotation(Exception):
    """The comment is not an annotation (OpenSCAD's parser error, which it ignores)."""


# A comment token: punctuation as a one-character str, numbers as float, words as _Word.
@dataclass(frozen=True)
class _Word:
    text: str


_CommentToken = Union[str, float, _Word]  # noqa: UP007


def _comment_tokens(text: str) -> list[_CommentToken]:
    tokens: list[_CommentToken] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in " \t()":
            pos += 1  # flex drops parentheses that no rule matches
        elif char in "[],:":
            tokens.append(char)
            pos += 1
        elif char == '"':
            word, pos = _quoted(text, pos + 1)
            tokens.append(_Word(word))
        else:
            token, pos = _number_or_word(text, pos)
            tokens.append(token)
    return tokens


def _number_or_word(text: str, pos: int) -> tuple[_CommentToken, int]:
    number = _NUMBER.match(text, pos)
    word = _WORD.match(text, pos)
    # The longest match wins, and numbers on a tie (flex's rule order): "10" is a number,
    # "10mm" a word.
    if number and (not word or len(number.group()) >= len(word.group())):
        return float(number.group()), number.end()
    assert word is not None  # every character but the ones handled above starts a word
    return _Word(word.group()), word.end()


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """A quoted word; an unclosed quote runs to the end of the comment, as in OpenSCAD."""
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in escapes:
            out.append(escapes[text[pos + 1]])
            pos += 2
            continue
        if char != "\\":
            out.append(char)
        pos += 1
    return "".join(out), pos


class _Parser:
    """``comment_parser.y``: an item, or ``[`` items ``]`` where an item may be labelled."""

    def __init__(self, tokens: list[_CommentToken]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> _CommentToken | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _expect(self, punctuation: str) -> None:
        if self._peek() != punctuation:
            raise _NoAnnotation
        self.pos += 1

    def annotation(self) -> Annotation:
        if self._peek() == "[":
            self.pos += 1
            value: Annotation = self._bracket()
            self._expect("]")
        else:
            value = self._item()
        if self.pos != len(self.tokens):
            raise _NoAnnotation
        return value

    def _bracket(self) -> Annotation:
        first = self._value()
        if self._peek() == ":" and isinstance(first, list):
            return self._range(first)
        values: list[AnnotationItem] = [_labelled(first)]
        while self._peek() == ",":
            self.pos += 1
            values.append(_labelled(self._value()))
        if len(values) == 1 and isinstance(first, list) and _all_numbers(first):
            return ScadRange(first[0], 1.0, first[1])  # type: ignore[arg-type]
        return values

    def _range(self, first: list[float | str]) -> Annotation:
        """``[min:step:max]``: the parser read ``min:step`` as a pair, then meets ``:``."""
        self.pos += 1
        end = self._item()
        numbers = [*first, end]
        if not _all_numbers(numbers) or self._peek() != "]":
            raise _NoAnnotation
        return ScadRange(*numbers)  # type: ignore[arg-type]

    def _value(self) -> float | str | list[float | str]:
        """An item, or a ``value:label`` pair as a two-element list."""
        item = self._item()
        if self._peek() != ":":
            return item
        self.pos += 1
        return [item, self._item()]

    def _item(self) -> float | str:
        """A number alone, or a run of words and numbers joined by spaces."""
        run: list[float | _Word] = []
        while isinstance(token := self._peek(), float | _Word):
            run.append(token)
            self.pos += 1
        if len(run) == 1 and isinstance(run[0], float):
            return run[0]
        if not any(isinstance(t, _Word) for t in run):
            raise _NoAnnotation  # nothing, or numbers with no word to join them
        return " ".join(t.text if isinstance(t, _Word) else f"{t:g}" for t in run)


def _all_numbers(values: list[float | str]) -> bool:
    return all(isinstance(v, float) for v in values)


def _labelled(value: float | str | list[float | str]) -> AnnotationItem:
    return Labelled(value[0], value[1]) if isinstance(value, list) else value
