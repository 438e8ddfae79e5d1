"""Queue ports for worker tests: the real ``SqlQueue``, with the database made unreachable
on demand (as a lost connection would, each call raises ``StoreUnavailable``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fabflow.errors import StoreUnavailable
from fabflow.store.queue import Claim, SqlQueue, Transition, Work


class FlakyQueue(SqlQueue):
    """``down``: every call fails; ``load_down``: only reading claimed attempts' orders does."""

    down = False
    load_down = False
    load_failures = 0

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the database is out of reach: down for the test")

    async def cycle(
        self,
        finished: list[Transition],
        limit: int,
        worker_id: str,
        now: float,
        take_over: bool,
        expire_waits: bool = True,
    ) -> tuple[list[bool], list[Claim]]:
        self._check()
        return await super().cycle(finished, limit, worker_id, now, take_over, expire_waits)

    async def load(self, claims: list[Claim], light_types: Collection[str]) -> list[Work]:
        self._check()
        if self.load_down:
            self.load_failures += 1
            raise StoreUnavailable("the database is out of reach: reading orders, for the test")
        return await super().load(claims, light_types)

    async def heartbeat(self, *args: Any) -> list[int]:
        self._check()
        return await super().heartbeat(*args)

    async def release(self, held: list[Claim], now: float) -> None:
        self._check()
        await super().release(held, now)
