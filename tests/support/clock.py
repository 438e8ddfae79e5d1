"""A clock that moves only when a test says so, for the worker's timers and leases."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class FakeClock:
    """Wall and monotonic time are one number, starting now; ``advance`` moves it forward in
    small steps, waking each sleeper whose time came and letting the woken run in between."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.sleep(timeout))
        await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, timer):
            task.cancel()
        return event.is_set()

    async def advance(self, seconds: float, step: float = 0.05) -> None:
        """Move time forward by ``seconds``, ``step`` at a time."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
            for _ in range(10):  # the woken run up to their next wait
                await asyncio.sleep(0)
