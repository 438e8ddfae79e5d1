"""What the worker needs of a queue: the port ``fabflow.store.queue.SqlQueue`` implements.

Every call may raise ``StoreUnavailable`` while the database is out of reach; the worker
waits it out (see ``Worker._call``). The records are those of ``fabflow.store.queue.records``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from fabflow.store.queue.records import Claim, Transition, Work


class QueuePort(Protocol):
    async def open(self, wake: Callable[[], None]) -> None: ...

    async def close(self) -> None: ...

    async def callback_secret(self) -> str: ...

    async def register(self, worker_id: str, hostname: str, pid: int, concurrency: int) -> None: ...

    async def cycle(
        self,
        finished: list[Transition],
        limit: int,
        worker_id: str,
        now: float,
        take_over: bool,
        expire_waits: bool = True,
        quotas: Mapping[str, int] | None = None,
    ) -> tuple[list[bool], list[Claim]]: ...

    async def runnable(self, now: float) -> dict[str, int]: ...

    async def load(self, claims: list[Claim], light_types: Collection[str]) -> list[Work]: ...

    async def heartbeat(
        self, worker_id: str, held: list[Claim], give_back: list[Claim], state: str, now: float
    ) -> list[int]: ...

    async def release(self, held: list[Claim], now: float) -> None: ...

    async def mark(self, worker_id: str, state: str, now: float) -> None: ...
