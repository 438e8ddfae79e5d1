"""Callback tokens: the credential a receiver uses to end the step that waits on it.

A token is ``<the step visit's idempotency key>.<HMAC-SHA256 of it under the installation's
key>``: the same for every attempt of a visit, impossible to make without the key, and one
fabflow can check before it has recorded the wait (a receiver may call back faster than the
worker commits). Only its sha256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def make_callback_token(secret: str, visit_key: str) -> str:
    return f"{visit_key}.{_mac(secret, visit_key)}"


def visit_of(secret: str, token: str) -> str | None:
    """The step visit's key a token was made for, or None when it is not a valid token."""
    visit_key, _, mac = token.rpartition(".")
    if not visit_key or not hmac.compare_digest(mac.encode(), _mac(secret, visit_key).encode()):
        return None
    return visit_key


def hash_token(token: str) -> str:
    """What is stored of a token: its sha256 (a leaked database gives no usable token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(secret: str, visit_key: str) -> str:
    digest = hmac.new(secret.encode(), f"callback:{visit_key}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
