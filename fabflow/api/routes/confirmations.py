"""A person's answer to an order that waits for a confirmation (a ``manual-confirmation`` step):
confirm, and the flow continues on the step's ``onSuccess``; reject, and it takes ``onError``
with error type ``rejected`` and the comment as the message. The acting key is recorded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from fabflow.api.auth import Actor, StoreDep, Tenant
from fabflow.api.routes.orders import OrderId
from fabflow.api.schemas import ERRORS, json_response
from fabflow.store.orders import confirmations

router = APIRouter(prefix="/api/orders", tags=["orders"], responses=ERRORS)


class CommentBody(BaseModel):
    """Why, in a few words: a rejection's comment becomes the error's message."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000, description="Kept with the answer.")


Comment = Annotated[CommentBody | None, Body()]


@router.post("/{order_id}/confirm")
def confirm_order(
    store: StoreDep, tenant: Tenant, by: Actor, order_id: OrderId, body: Comment = None
) -> Response:
    """Confirm the order's wait: the flow continues on the step's ``onSuccess``. 409 when the
    order does not wait for a confirmation."""
    comment = "" if body is None else body.comment
    return json_response(confirmations.confirm(store, tenant, order_id, by, comment))


@router.post("/{order_id}/reject")
def reject_order(
    store: StoreDep, tenant: Tenant, by: Actor, order_id: OrderId, body: Comment = None
) -> Response:
    """Reject the order's wait: the flow takes the step's ``onError``, with error type
    ``rejected`` and the comment as its message. 409 when the order does not wait for a
    confirmation."""
    comment = "" if body is None else body.comment
    return json_response(confirmations.reject(store, tenant, order_id, by, comment))
