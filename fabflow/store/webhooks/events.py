"""Which webhook events an order's recorded event makes, and what their bodies say. Pure.

The ``events`` table records what happened to orders (``order_created``, ``step_succeeded``,
``step_waiting``, ``attempt_retry``, ``step_failed``, ``cancelled`` ...). A webhook hears:

- ``order.created``: the order was accepted;
- ``order.status_changed``: a step succeeded and set the order's status;
- ``order.waiting``: a step waits for a callback or a person's confirmation;
- ``order.unhealthy``: a step failed and is being retried (the first retry of a step visit;
  see ``fabflow.lifecycle.health``). A wait past its deadline or a flow past its deadline makes
  an order unhealthy too, but nothing happens then to record: those send no event;
- ``order.succeeded`` / ``order.failed``: the execution ended so;
- ``order.cancelled``: an operator cancelled it.

One recorded event may make several (a last step's success: ``order.status_changed`` then
``order.succeeded``). Each has an id made of the recorded event's, so a re-dispatch makes the
same id and a receiver can drop what it has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_TYPES = (
    "order.created",
    "order.status_changed",
    "order.waiting",
    "order.unhealthy",
    "order.succeeded",
    "order.failed",
    "order.cancelled",
)
# The recorded kinds that can make a webhook event (the dispatcher reads only these).
SOURCE_KINDS = (
    "order_created",
    "step_succeeded",
    "step_waiting",
    "attempt_retry",
    "step_failed",
    "cancelled",
)
_ENDED = {"succeeded": "order.succeeded", "failed": "order.failed"}


def types_of(kind: str, data: Mapping[str, Any]) -> list[str]:
    """The webhook event types a recorded event of ``kind`` with ``data`` makes, in order."""
    if kind == "order_created":
        return ["order.created"]
    if kind == "cancelled":
        return ["order.cancelled"]
    if kind == "step_waiting":
        return ["order.waiting"]
    if kind == "attempt_retry":
        return ["order.unhealthy"] if data.get("attempt") == 1 else []
    found = []
    if kind == "step_succeeded" and data.get("status") is not None:
        found.append("order.status_changed")
    if kind in ("step_succeeded", "step_failed"):
        ended = _ENDED.get(str(data.get("executionState")))
        if ended is not None:
            found.append(ended)
    return found


def event_id(recorded_id: int, event_type: str) -> str:
    """The body's ``id``: unique per installation, the same whenever it is sent again."""
    return f"evt_{recorded_id:012d}_{event_type.removeprefix('order.')}"


def state_of(kind: str, data: Mapping[str, Any]) -> str:
    """The execution's state right after the recorded event."""
    if kind == "order_created":
        return "pending"
    if kind == "cancelled":
        return "cancelled"
    return str(data.get("executionState") or "running")


def event_data(
    kind: str, data: Mapping[str, Any], order: Mapping[str, Any], status: str
) -> dict[str, Any]:
    """The body's ``data``: the order as of the event (``order`` has ``id``, ``externalId``
    and ``flowId``; ``status`` is its status then)."""
    out: dict[str, Any] = {
        "orderId": order["id"],
        "externalId": order.get("externalId"),
        "flowId": order.get("flowId"),
        "status": status,
        "state": state_of(kind, data),
    }
    step = data.get("stepDefinitionId")
    if step is not None:
        out["stepDefinitionId"] = step
    if data.get("error") is not None:
        out["error"] = data["error"]
    if kind == "attempt_retry":
        error = data.get("error") or {}
        out["health"] = {
            "state": "unhealthy",
            "reason": f"retrying step {step}: {error.get('message') or 'it failed'}",
            "nextAttemptInSeconds": (data.get("next") or {}).get("inSeconds"),
        }
    return out
