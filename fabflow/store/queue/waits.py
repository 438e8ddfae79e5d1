"""Waits resolved from outside the worker: a receiver's callback, an operator's confirmation
or rejection. Each is one guarded update of the waiting attempt (``WHERE state = 'waiting'``)
and the same rows a worker's transition writes, from the waiting execution.
"""

from __future__ import annotations

import hashlib


def hash_token(token: str) -> str:
    """What is stored of a callback token: its sha256 (the token is 128+ random bits: a fast
    hash is enough, and a leaked database gives no usable token)."""
    return hashlib.sha256(token.encode()).hexdigest()
