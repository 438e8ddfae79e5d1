"""The ``Fabflow-Signature`` header: an HMAC-SHA256 of the request body with a timestamp.

Format: ``Fabflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. The key
is ``FABFLOW_SIGNING_SECRET`` (UTF-8). The timestamp is signed too, so a captured request cannot
be replayed later than the receiver's tolerance. ``verify`` depends on the standard library only:
receivers may copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Fabflow-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the ``Fabflow-Signature`` header for ``body``, signed now by default."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str, header: str, body: bytes, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance_s`` seconds.

    ``body`` must be the raw request body, byte for byte (not re-serialised JSON). Several
    ``v1=`` entries are accepted, so a sender can sign with an old and a new secret while the
    secret is rotated.
    """
    parts = [p.strip().split("=", 1) for p in header.split(",")]
    fields = [(p[0], p[1]) for p in parts if len(p) == 2]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    # compare_digest: the time taken must not tell an attacker how many characters matched.
    return any(hmac.compare_digest(expected, v) for k, v in fields if k == "v1")
