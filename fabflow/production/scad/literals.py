"""Python values as OpenSCAD literals, for ``openscad -D name=value``.

``openscad`` appends each ``-D`` text to the program as an assignment statement, so a value is
program text: a string must be escaped so that nothing it holds can end the literal and start a
second assignment or a module call. Numbers keep every digit (``repr`` of a float round-trips),
booleans become ``true``/``false``, ``None`` becomes ``undef`` and lists become vectors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fabflow.errors import ParameterError

_NAME = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")
# OpenSCAD's lexer knows these escapes; everything else below 0x20 (and DEL) goes as \xNN,
# which it accepts for 0x01..0x7f. NUL has no spelling at all.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def scad_literal(value: Any, name: str = "") -> str:
    """The OpenSCAD literal for ``value``; ``name`` only labels the error."""
    if value is None:
        return "undef"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value, name)
    if isinstance(value, str):
        return _string(value, name)
    if isinstance(value, Sequence):
        return "[" + ", ".join(scad_literal(item, name) for item in value) + "]"
    raise ParameterError(name, f"{type(value).__name__} has no OpenSCAD literal")


def _number(value: float, name: str) -> str:
    if not math.isfinite(value):
        raise ParameterError(name, f"{value} is not a finite number")
    return repr(value)  # shortest text that reads back as the same double: 0.1, 1e-05, 1e+20


def _string(value: str, name: str) -> str:
    if "\x00" in value:
        raise ParameterError(name, "a text cannot hold the NUL character")
    return '"' + "".join(_escape(ch) for ch in value) + '"'


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\x{ord(ch):02x}"
    return ch


def define_arguments(values: Mapping[str, Any]) -> list[str]:
    """``-D name=literal`` arguments for ``openscad``, in the order given."""
    arguments: list[str] = []
    for name, value in values.items():
        if not _NAME.fullmatch(name):
            raise ParameterError(name, f"{name!r} is not an OpenSCAD variable name")
        arguments += ["-D", f"{name}={scad_literal(value, name)}"]
    return arguments
