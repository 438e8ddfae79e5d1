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


# -- signed file links ----------------------------------------------------------------------
# The same installation key as callback tokens, under another purpose label: a callback token's
# MAC can never pass as a file link's, nor the other way round.


def file_link_signature(secret: str, tenant_id: str, file_id: str, expires: int) -> str:
    """The MAC of a link to ``file_id`` (``<order id>/<file name>``) of ``tenant_id`` that
    works until ``expires`` (UNIX seconds)."""
    message = "\n".join(("file-link", tenant_id, file_id, str(expires))).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def file_link_valid(
    secret: str, tenant_id: str, file_id: str, expires: int, signature: str
) -> bool:
    """Whether ``signature`` is the link's MAC (compared in constant time)."""
    expected = file_link_signature(secret, tenant_id, file_id, expires)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
