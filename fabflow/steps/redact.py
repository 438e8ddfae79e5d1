"""Secret values kept out of what is recorded: attempt errors and details, and events.

A step may be given a tenant's secrets (``StepContext.secrets``); whatever it reports (an
error's message, a receiver's answer echoing a header) passes through ``redact`` before it
is stored, so each value, as written and URL-encoded, reads ``[secret]``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

SHOWN = "[secret]"


def forms(values: Collection[str]) -> list[str]:
    """Each value as written and as URL-encoded, longest first (so a value that holds a
    shorter one is replaced whole)."""
    found = {v for v in values if v} | {quote(v, safe="") for v in values if v}
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, hidden: list[str]) -> str:
    for value in hidden:
        if value in text:
            text = text.replace(value, SHOWN)
    return text


def redact(data: Any, hidden: list[str]) -> Any:
    """``data`` (text or JSON) with every form in ``hidden`` replaced by ``[secret]``, in
    strings and in object keys."""
    if not hidden:
        return data
    if isinstance(data, str):
        return redact_text(data, hidden)
    if isinstance(data, dict):
        return {redact_text(str(k), hidden): redact(v, hidden) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(v, hidden) for v in data]
    return data
