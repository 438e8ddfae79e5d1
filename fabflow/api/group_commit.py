"""Group commit for the API's writes: requests that arrive while a commit runs are written
together by the next one (``POST /api/orders``, ``POST /api/callbacks/{token}``).

A commit costs about as much for ten rows as for one (SQLite syncs its log once per commit;
PostgreSQL makes one round trip per statement), so under load each request waits for at most
one commit and the store writes far fewer of them. A lone request is written at once.

One request's bad item must not fail the others written with it: when a batch fails for a
reason other than the database being out of reach, each of its items is written again on its
own, so only the item that fails gets the error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from fabflow.store import orders
from fabflow.store.queue.waits import Resolution, resolve_callbacks
from fabflow.store.repository import Store

MAX_BATCH = 64
Item = TypeVar("Item")

Created = tuple[dict[str, Any], bool]


class GroupCommit(Generic[Item]):
    """Queues items and writes them in batches, one batch at a time, with ``write_batch``:
    one result per item, an exception (``FabflowError`` ...) for an item refused on its own.
    ``batch_sizes`` counts the items of each batch written (the last ``MAX_BATCH`` batches)."""

    def __init__(self, write_batch: Callable[[Sequence[Item]], list[Any]]) -> None:
        self.write_batch = write_batch
        self._pending: list[tuple[Item, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batch_sizes: deque[int] = deque(maxlen=MAX_BATCH)

    @property
    def waiting(self) -> int:
        """Items queued for the next batch."""
        return len(self._pending)

    async def submit(self, item: Item) -> Any:
        """The item's result; raises the error it was refused with."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            items = [item for item, _ in batch]
            self.batch_sizes.append(len(items))
            results = await run_in_threadpool(self._results, items)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _results(self, items: list[Item]) -> list[Any]:
        """One result (or exception) per item: the batch's, else each item's on its own."""
        try:
            return self.write_batch(items)
        except OperationalError as exc:  # the database is out of reach: all fail alike
            return [exc] * len(items)
        except Exception as exc:  # an item the database refused: find it, spare the others
            if len(items) == 1:
                return [exc]
        return [self._results([item])[0] for item in items]


class OrderBatcher:
    """New orders, written together (see ``orders.create_orders``)."""

    def __init__(self, store: Store) -> None:
        self.group: GroupCommit[tuple[str, dict[str, Any], str]] = GroupCommit(
            lambda items: list(orders.create_orders(store, items))
        )

    async def create(self, tenant_id: str, order: dict[str, Any], flow_id: str) -> Created:
        """``(resource, created)`` as ``orders.create_order``; raises its NotFound/Conflict,
        or the store's error for this order alone (never another order's)."""
        created: Created = await self.group.submit((tenant_id, order, flow_id))
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
