"""Group commit for the API's writes: requests that arrive while a commit runs are written
together by the next one (``POST /api/orders``, ``POST /api/callbacks/{token}``).

A commit costs about as much for ten rows as for one (SQLite syncs its log once per commit;
PostgreSQL makes one round trip per statement), so under load each request waits for at most
one commit and the store writes far fewer of them. A lone request is written at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from fabflow.errors import FabflowError
from fabflow.store import orders
from fabflow.store.queue.waits import Resolution, resolve_callbacks
from fabflow.store.repository import Store

MAX_BATCH = 64
Item = TypeVar("Item")

Created = tuple[dict[str, Any], bool]


class GroupCommit(Generic[Item]):
    """Queues items and writes them in batches, one batch at a time, with ``write_batch``:
    one result per item, a ``FabflowError`` for an item refused on its own."""

    def __init__(self, write_batch: Callable[[Sequence[Item]], list[Any]]) -> None:
        self.write_batch = write_batch
        self._pending: list[tuple[Item, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Any:
        """The item's result; raises the error it was refused with."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        result = await future
        if isinstance(result, FabflowError):
            raise result
        return result

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            items = [item for item, _ in batch]
            try:
                results = await run_in_threadpool(self.write_batch, items)
            except Exception as exc:  # the database failed: every request of the batch fails
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class OrderBatcher:
    """New orders, written together (see ``orders.create_orders``)."""

    def __init__(self, store: Store) -> None:
        self._group: GroupCommit[tuple[str, dict[str, Any], str]] = GroupCommit(
            lambda items: list(orders.create_orders(store, items))
        )

    async def create(self, tenant_id: str, order: dict[str, Any], flow_id: str) -> Created:
        """``(resource, created)`` as ``orders.create_order``; raises its NotFound/Conflict."""
        created: Created = await self._group.submit((tenant_id, order, flow_id))
        return created


class CallbackBatcher:
    """Callbacks, resolved together (see ``waits.resolve_callbacks``)."""

    def __init__(self, store: Store, secret: Callable[[], str]) -> None:
        self._group: GroupCommit[tuple[str, Resolution]] = GroupCommit(
            lambda items: resolve_callbacks(store, items, secret())
        )

    async def resolve(self, token: str, resolution: Resolution) -> dict[str, Any]:
        """``{"orderId", "state"}``; raises NotFound, Conflict or WaitNotReady."""
        result: dict[str, Any] = await self._group.submit((token, resolution))
        return result
