"""Assembling a worker's parts: the executors of every registered step type."""

from __future__ import annotations

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
