"""Step types for tests: they behave as told by their options."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fabflow.errors import PermanentStepError, TransientStepError
from fabflow.flows.options import OptionsModel
from fabflow.steps.base import StepContext, StepExecutor, StepResult
from fabflow.steps.registry import register, unregister


class ScriptOptions(OptionsModel):
    sleep: float = 0.0  # seconds
    ignore_cancel: bool = False  # keep sleeping through cancellation
    fail_attempts: int = 0  # the first N attempts fail (transiently)
    permanent: bool = False  # fail permanently (every attempt)
    broken_while: str = ""  # fail permanently while BROKEN[name] is true


CALLS: list[dict[str, Any]] = []
BROKEN: dict[str, bool] = {}


class ScriptStep(StepExecutor):
    """``test-script``: sleeps, fails or succeeds as its options say, and records each call."""

    type_name = "test-script"
    options_model = ScriptOptions

    async def execute(self, ctx: StepContext) -> StepResult:
        opts: ScriptOptions = ctx.options
        call: dict[str, Any] = {
            "step": ctx.step_id,
            "key": ctx.idempotency_key,
            "attempt": ctx.attempt,
            "error": ctx.error,
            "at": time.monotonic(),
        }
        CALLS.append(call)
        if opts.sleep:
            try:
                await _sleep(opts.sleep, opts.ignore_cancel)
            except asyncio.CancelledError:
                call["cancelled_at"] = time.monotonic()
                call["cancelled_wall"] = time.time()
                raise
        if opts.permanent or BROKEN.get(opts.broken_while, False):
            raise PermanentStepError("told to fail", error_type="scripted")
        if ctx.attempt <= opts.fail_attempts:
            raise TransientStepError(f"attempt {ctx.attempt} told to fail", error_type="scripted")
        return StepResult(details={"attempt": ctx.attempt})


async def _sleep(seconds: float, ignore_cancel: bool) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            if not ignore_cancel:
                raise


@contextmanager
def installed() -> Iterator[None]:
    """``test-script`` is a valid step type inside the block."""
    register(ScriptStep)
    try:
        yield
    finally:
        unregister(ScriptStep.type_name)
