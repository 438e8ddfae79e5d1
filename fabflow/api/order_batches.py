"""Group commit for ``POST /api/orders``: orders that arrive while a commit runs are written
together by the next one.

A commit costs about as much for ten orders as for one (SQLite syncs its log once per commit;
PostgreSQL makes one round trip per statement), so under load each request waits for at most
one commit and the store writes far fewer of them. A lone request is written at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool

from fabflow.errors import Conflict, NotFound
from fabflow.store import orders
from fabflow.store.repository import Store

MAX_BATCH = 64

Created = tuple[dict[str, Any], bool]


class OrderBatcher:
    """Queues accepted orders and writes them in batches, one batch at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[str, dict[str, Any], str, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(self, tenant_id: str, order: dict[str, Any], flow_id: str) -> Created:
        """``(resource, created)`` as ``orders.create_order``; raises its NotFound/Conflict."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((tenant_id, order, flow_id, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        result = await future
        if isinstance(result, NotFound | Conflict):
            raise result
        created: Created = result
        return created

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            items = [(t, o, f) for t, o, f, _ in batch]
            try:
                results: list[Any] = await run_in_threadpool(
                    orders.create_orders, self.store, items
                )
            except Exception as exc:  # the database failed: every request of the batch fails
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
