"""A person's answer to a ``manual-confirmation`` step: confirm (the flow continues on the
step's ``onSuccess``) or reject (its ``onError``, with error type ``rejected`` and the comment as
the message). Who answered and when is kept on the attempt (``wait.resolution``)."""

from __future__ import annotations

from typing import Any

from fabflow.store.orders.read import get_order, get_order_row
from fabflow.store.queue.waits import Resolution, resolve_confirmation
from fabflow.store.repository import Store

REJECTED = "rejected"  # the error type of a rejection, for onError's templates and the API


def confirm(
    store: Store, tenant_id: str, order_id: str, by: str, comment: str = ""
) -> dict[str, Any]:
    """Confirm the order's wait; the order resource after it. NotFound for an unknown order (or
    another tenant's), Conflict when it does not wait for a confirmation."""
    resolution = Resolution(outcome="success", message=comment, by=by)
    return _answer(store, tenant_id, order_id, resolution)


def reject(
    store: Store, tenant_id: str, order_id: str, by: str, comment: str = ""
) -> dict[str, Any]:
    """Reject the order's wait; as ``confirm`` otherwise."""
    message = comment or f"by {by}, without a comment"
    resolution = Resolution(outcome="error", error_type=REJECTED, message=message, by=by)
    return _answer(store, tenant_id, order_id, resolution)


def _answer(store: Store, tenant_id: str, order_id: str, resolution: Resolution) -> dict[str, Any]:
    get_order_row(store, tenant_id, order_id)  # 404 before 409: the order must be the tenant's
    resolve_confirmation(store, tenant_id, order_id, resolution)
    return get_order(store, tenant_id, order_id)
