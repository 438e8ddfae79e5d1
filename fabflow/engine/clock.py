"""The worker's clock: wall time for leases, a monotonic time for deadlines, and waiting.

The worker reads time and waits only through a ``Clock``, so that a test can run it on a
clock it advances by hand (``tests/support/clock.py``) instead of sleeping to see that
nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch: leases are written in it."""

    def monotonic(self) -> float:
        """Seconds that never go back: attempts' deadlines."""

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` passes; whether it was set."""


class SystemClock:
    """The machine's clocks, and asyncio's own waiting."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return event.is_set()
