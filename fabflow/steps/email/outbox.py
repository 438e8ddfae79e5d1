"""The outbox: where messages go when no SMTP server is configured (development, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from fabflow.files import safe_part


def write_outbox(outbox: Path, idempotency_key: str, data: bytes) -> Path:
    """Write the message atomically as ``<outbox>/<idempotency key>.eml``; return the path."""
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox / f"{safe_part(idempotency_key)}.eml"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # a reader never sees half a message
    return target
