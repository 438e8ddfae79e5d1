"""The FastAPI application factory: routes, errors, limits, and (for ``fabflow serve``) the
in-process workers that share the app's store and event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fabflow import __version__, web
from fabflow.api import errors
from fabflow.api.auth import AUTH_CACHE_SECONDS, AuthCache
from fabflow.api.limits import BodyLimit
from fabflow.api.order_batches import OrderBatcher
from fabflow.api.routes import files, flows, meta, orders, products, stream
from fabflow.api.schemas import extra_components
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.settings import Settings
from fabflow.steps.registry import load_entry_points
from fabflow.store.repository import Store

log = logging.getLogger(__name__)

DESCRIPTION = """fabflow runs order flows for made-to-order 3D products.

Every route but `/api/health` needs `Authorization: Bearer <api key>`; a key sees only its
tenant's flows, orders and files. Every error answers
`{"code", "message", "problems": [{"pointer", "message"}]}`."""


def create_app(
    settings: Settings,
    store: Store | None = None,
    start_workers: int = 0,
    *,
    demo: bool = False,
    auth_cache_seconds: float = AUTH_CACHE_SECONDS,
) -> FastAPI:
    """The API on ``store`` (opened from ``settings`` and closed on shutdown when not given).

    ``start_workers`` runs that many workers in the app's event loop while it serves; they are
    woken by the store's enqueue callbacks, so an order created here starts at once. ``demo``
    adds ``POST /api/demo/echo``, the receiver of the demo flow's REST step. A revoked key
    stops working within ``auth_cache_seconds`` (keys are looked up once per that period).
    """
    load_entry_points()  # the step types flows may use
    _load_products()
    owned = store is None
    the_store = store if store is not None else Store.open(settings)
    app = FastAPI(
        title="fabflow",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=_lifespan(the_store, owned, start_workers),
    )
    app.state.settings = settings
    app.state.store = the_store
    app.state.stopping = asyncio.Event()
    app.state.workers = []
    app.state.order_batcher = OrderBatcher(the_store)
    app.state.auth_cache = AuthCache(auth_cache_seconds)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # stream first: /api/orders/stream must not be read as the order "stream".
    for routes in (stream, orders, files, flows, products, meta):
        app.include_router(routes.router)
    if demo:
        app.include_router(meta.demo_router)
    web.install(app)  # the operator's UI at /, after the API so /api routes win
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _load_products() -> None:
    # Load the catalogue before requests arrive: intake checks lines in many threads at once,
    # and the registry's first load is not safe to race (a thread could see it half-filled).
    from fabflow.production.registry import products

    products()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document plus the body schemas routes read themselves."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(extra_components())
        app.openapi_schema = document
    return app.openapi_schema


def _lifespan(store: Store, owned: bool, workers: int) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if owned:
                stack.callback(store.close)
            tasks = await _start_workers(app, stack, store, workers)
            yield
            app.state.stopping.set()  # ends live streams
            await _drain(app, tasks)

    return lifespan


async def _start_workers(
    app: FastAPI, stack: AsyncExitStack, store: Store, count: int
) -> list[asyncio.Task[None]]:
    if count <= 0:
        return []
    executors = await stack.enter_async_context(started_executors(store.settings))
    app.state.workers = [Worker(store, executors) for _ in range(count)]
    for worker in app.state.workers:
        log.info("worker %s running (concurrency %d)", worker.id, worker.concurrency)
    return [asyncio.create_task(w.run()) for w in app.state.workers]


async def _drain(app: FastAPI, tasks: list[asyncio.Task[None]]) -> None:
    """Stop claiming; running attempts finish within the grace period, the rest are released."""
    for worker in app.state.workers:
        worker.stop()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            log.error("a worker failed: %r", result)
