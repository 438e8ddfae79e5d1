"""What ``fabflow serve`` runs: the HTTP API, the operator's web UI, and in-process workers that
share the API's store and event loop, composed into one app.

The one module that puts these layers together: ``fabflow.api`` knows nothing of the UI or of
the workers, and ``fabflow.web`` nothing of the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fabflow import web
from fabflow.api import create_app
from fabflow.api.app import Lifespan
from fabflow.engine.runtime import started_executors
from fabflow.engine.webhooks import WebhookRunner
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.store.repository import Store

log = logging.getLogger(__name__)


def create_server(
    settings: Settings, store: Store, workers: int = 1, *, demo: bool = False
) -> FastAPI:
    """The API and the web UI on ``store`` (the caller closes it), with ``workers`` workers in
    the app's event loop while it serves (0: an API-only node, others run the work).

    The workers are woken by the store's enqueue callbacks, so an order created here starts at
    once. On shutdown they stop claiming; running attempts finish within the grace period, and
    the rest go back to the queue. ``demo`` is ``create_app``'s.
    """
    app = create_app(
        settings,
        store,
        demo=demo,
        session_key=web.session_key,  # a signed-in browser calls the API with its session
        lifespan=_workers(store, workers) if workers > 0 else None,
    )
    web.install(app)  # after the API's routes, so /api paths stay the API's
    return app


def _workers(store: Store, count: int) -> Lifespan:
    @asynccontextmanager
    async def run_workers(_app: FastAPI) -> AsyncIterator[None]:
        async with started_executors(store.settings) as executors:
            workers = [Worker(store, executors) for _ in range(count)]
            for worker in workers:
                log.info("worker %s running (concurrency %d)", worker.id, worker.concurrency)
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            webhooks = WebhookRunner(store)  # status webhooks, beside the workers
            sending = asyncio.create_task(webhooks.run())
            try:
                yield
            finally:
                webhooks.stop()
                await _drain(workers, tasks)
                await asyncio.gather(sending, return_exceptions=True)

    return run_workers


async def _drain(workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
    """Stop claiming; running attempts finish within the grace period, the rest are released."""
    for worker in workers:
        worker.stop()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("a worker failed: %r", result)
