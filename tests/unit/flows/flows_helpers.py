"""Shared constants and helpers of the flow-language tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
SPEC_FILES = sorted(SPEC_DIR.glob("*.json"))

RunCli = Callable[..., Result]


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer`` in ``doc`` (RFC 6901); KeyError/IndexError when absent."""
    if pointer == "":
        return doc
    assert pointer.startswith("/"), pointer
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list):
            assert token.isdigit(), pointer
            doc = doc[int(token)]
        elif isinstance(doc, dict):
            doc = doc[token]
        else:
            raise KeyError(pointer)
    return doc
