"""Assembling a worker's parts: the executors of every registered step type."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fabflow.settings import Settings
from fabflow.steps.base import StepExecutor
from fabflow.steps.registry import executors as registered_executors

log = logging.getLogger(__name__)


@asynccontextmanager
async def started_executors(
    settings: Settings, only: dict[str, type[StepExecutor]] | None = None
) -> AsyncIterator[dict[str, StepExecutor]]:
    """One started instance of each executor class, closed on exit."""
    classes = only if only is not None else registered_executors()
    instances = {name: cls(settings) for name, cls in classes.items()}
    started: list[StepExecutor] = []
    try:
        for instance in instances.values():
            await instance.start()
            started.append(instance)
        yield instances
    finally:
        for instance in reversed(started):
            try:
                await instance.close()
            except Exception:
                log.exception("closing executor %s failed", type(instance).__name__)


def tune_collector() -> None:
    """Tune the garbage collector for a long-lived, busy worker process; call once, at start-up.

    What the process holds once started (modules, flows, clients) lives as long as it does:
    frozen, it leaves the collector's full scans. Steps in flight die by reference counting,
    so the youngest generation is collected after 10,000 allocations instead of 700, not
    rescanned hundreds of times a run. Frozen objects are never collected: this is for a
    process that runs one worker, not for code that starts workers over and over (tests).
    """
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
