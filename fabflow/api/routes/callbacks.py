"""Callbacks: a receiver says how a step that waits on it ended (``waitForCallback``).

``POST /api/callbacks/{token}`` takes no API key: the token, 128+ random bits sent in the
order's ``updateUrl`` and valid for one wait, is the credential. The answer names the order and
its state, never more of it: a callback must not learn another tenant's data, nor whether an
unknown token ever existed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from fabflow.api.errors import TooManyRequests, error_response
from fabflow.api.errors import body as error_body
from fabflow.api.group_commit import CallbackBatcher
from fabflow.api.schemas import ERRORS, json_response
from fabflow.errors import InvalidInput, WaitNotReady
from fabflow.order_input import json_problems
from fabflow.store.queue.waits import Resolution
from fabflow.tokens import hash_token

router = APIRouter(prefix="/api/callbacks", tags=["callbacks"], responses=ERRORS)
EARLY_WAIT_S = 10.0  # how long a callback may wait for its wait to be recorded

Token = Annotated[
    str,
    Path(
        min_length=20,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="The token of the order's updateUrl.",
    ),
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
async def callback(request: Request, token: Token, body: CallbackBody) -> Response:
    """End the step that waits on this token: ``success`` continues on its ``onSuccess``,
    ``error`` takes its ``onError``. The same callback again answers the same (200); another
    outcome after the first, 409; an unknown, used or expired token, 404; a valid token
    whose wait is still not recorded after 10 s (its worker died after the POST: the step
    runs again), 503 with Retry-After."""
    limits: TokenBuckets = request.app.state.callback_limits
    limits.take(hash_token(token))
    problems = json_problems(body.data, "/data") if body.data is not None else []
    if problems:  # kept on the order for later steps: the same limits as an order's data
        first = problems[0]
        raise InvalidInput(f"invalid callback: {first.pointer}: {first.message}", problems)
    resolution = Resolution(
        outcome=body.outcome, status=body.status, message=body.message, data=body.data
    )
    batcher: CallbackBatcher = request.app.state.callback_batcher
    # A receiver may call back as soon as it answered the POST, before the worker has
    # recorded the wait: hold the callback a moment rather than refuse it.
    deadline = time.monotonic() + EARLY_WAIT_S
    while True:
        try:
            return json_response(await batcher.resolve(token, resolution))
        except WaitNotReady as exc:
            if time.monotonic() >= deadline:
                payload = error_body(exc.code, exc.message)
                return error_response(503, payload, **{"Retry-After": "5"})
        await asyncio.sleep(0.05)
