"""What steps report for later steps to read (``steps.<id>`` in templates and choices)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from fabflow.flows.context import SAFE_HEADERS

MAX_BODY_BYTES = 64 * 1024  # a larger answer's body is not kept (null)


def response_output(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A REST answer as ``steps.<id>.response``: its status, a safe subset of its headers
    (lower-case names) and its body parsed as JSON (null when not JSON or over 64 KiB)."""
    kept = {name: headers[name] for name in SAFE_HEADERS if name in headers}
    parsed: Any = None
    if body and len(body) <= MAX_BODY_BYTES:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    return {"response": {"status": status, "headers": kept, "body": parsed}}
