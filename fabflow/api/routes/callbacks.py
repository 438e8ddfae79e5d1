"""Callbacks: a receiver says how a step that waits on it ended (``waitForCallback``).

``POST /api/callbacks/{token}`` takes no API key: the token, 128+ random bits sent in the
order's ``updateUrl`` and valid for one wait, is the credential. The answer names the order and
its state, never more of it: a callback must not learn another tenant's data, nor whether an
unknown token ever existed.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fabflow.api.auth import StoreDep
from fabflow.api.errors import TooManyRequests
from fabflow.api.schemas import ERRORS, json_response
from fabflow.store.queue.waits import Resolution, hash_token, resolve_callback

router = APIRouter(prefix="/api/callbacks", tags=["callbacks"], responses=ERRORS)

Token = Annotated[
    str,
    Path(min_length=20, max_length=100, description="The token of the order's updateUrl."),
]


class CallbackBody(BaseModel):
    """How the step ended, as the receiver says it."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "error"] = Field(description="How the step ended.")
    status: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="On success: the order's status (default: the step's successStatus).",
    )
    message: str = Field(default="", max_length=2000, description="On error: why.")
    data: dict[str, Any] | None = Field(
        default=None, description="Kept on the order (stepData) for later steps' templates."
    )


class TokenBuckets:
    """At most ``burst`` callbacks at once per token, refilled at ``rate`` per second."""

    def __init__(self, rate: float = 5.0, burst: float = 10.0, limit: int = 100_000) -> None:
        self.rate, self.burst, self.limit = rate, burst, limit
        self._buckets: dict[str, tuple[float, float]] = {}  # token hash: (tokens, at)

    def take(self, key: str) -> None:
        now = time.monotonic()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            raise TooManyRequests("too many callbacks for this token: try again in a second")
        if len(self._buckets) >= self.limit:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, now)


@router.post("/{token}")
async def callback(request: Request, token: Token, body: CallbackBody, store: StoreDep) -> Response:
    """End the step that waits on this token: ``success`` continues on its ``onSuccess``,
    ``error`` takes its ``onError``. The same callback again answers the same (200); another
    outcome after the first, 409; an unknown, used or expired token, 404."""
    limits: TokenBuckets = request.app.state.callback_limits
    limits.take(hash_token(token))
    resolution = Resolution(
        outcome=body.outcome, status=body.status, message=body.message, data=body.data
    )
    result = await run_in_threadpool(resolve_callback, store, token, resolution)
    return json_response(result)
