"""The FastAPI application factory: the HTTP API alone (routes, errors, limits, auth).

What else runs in the same process (the web UI, workers) is composed in by ``fabflow.server``,
through ``create_app``'s ``session_key`` and ``lifespan``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from fabflow import __version__
from fabflow.api import errors
from fabflow.api.auth import AUTH_CACHE_SECONDS, Auth, AuthCache, SessionKey
from fabflow.api.group_commit import CallbackBatcher, OrderBatcher
from fabflow.api.limits import BodyLimit
from fabflow.api.routes import (
    audit,
    bulk,
    callbacks,
    confirmations,
    files,
    flows,
    meta,
    orders,
    products,
    secrets,
    stream,
    webhooks,
)
from fabflow.api.schemas import extra_components
from fabflow.api.work_gate import WorkGate
from fabflow.production.scad import bundle
from fabflow.settings import Settings
from fabflow.steps.registry import load_entry_points
from fabflow.store.repository import Store

DOCS_ASSETS = "/api/docs/assets"


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at ``/api/docs`` from the files the ``swagger-ui-bundle`` package ships, so
    the page works on a machine with no internet (FastAPI's default loads them from a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="fabflow API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = """fabflow runs order flows for made-to-order 3D products.

Every route but `/api/health` needs `Authorization: Bearer <api key>`; a key sees only its
tenant's flows, orders and files. Every error answers
`{"code", "message", "problems": [{"pointer", "message"}]}`."""


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    demo: bool = False,
    auth_cache_seconds: float = AUTH_CACHE_SECONDS,
    session_key: SessionKey | None = None,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """The API on ``store`` (opened from ``settings`` and closed on shutdown when not given).

    ``demo`` adds ``POST /api/demo/echo``, the receiver of the demo flow's REST step. A revoked
    key stops working within ``auth_cache_seconds`` (keys are looked up once per that period).
    ``session_key`` lets requests without a Bearer key authenticate another way (a UI's
    sessions). ``lifespan`` runs while the app serves, inside the API's own: the store is open
    before it starts and closed after it ends, and live event streams end before it does.
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
        docs_url=None,  # served below with Swagger UI's own files, not from a CDN
        redoc_url=None,
        lifespan=_lifespan(the_store, owned, lifespan),
    )
    app.state.settings = settings
    app.state.work_gate = WorkGate()
    _serve_docs(app)
    app.state.store = the_store
    app.state.stopping = asyncio.Event()
    app.state.order_batcher = OrderBatcher(the_store)
    callback_secret = functools.cache(
        lambda: settings.callback_secret or the_store.install_secret("callback")
    )
    app.state.callback_batcher = CallbackBatcher(the_store, callback_secret)
    app.state.callback_limits = callbacks.TokenBuckets()
    app.state.auth = Auth(AuthCache(auth_cache_seconds), session_key)
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        uploads=("/api/products",),  # a product's files: a bundle's limit and some form overhead
        upload_bytes=bundle.MAX_BYTES + (1 << 20),
    )
    # stream first: /api/orders/stream must not be read as the order "stream".
    for routes in (
        stream,
        bulk,  # before orders: /api/orders/bulk/retry is not order "bulk"'s retry
        confirmations,
        orders,
        callbacks,
        files,
        flows,
        products,
        webhooks,
        audit,
        meta,
    ):
        app.include_router(routes.router)
    app.include_router(secrets.router)
    app.include_router(files.links_router)  # signed file links: no API key
    if demo:
        app.include_router(meta.demo_router)
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


def _lifespan(store: Store, owned: bool, inner: Lifespan | None) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if owned:
                stack.callback(store.close)
            if inner is not None:
                await stack.enter_async_context(inner(app))
            stack.callback(app.state.stopping.set)  # first on the way out: live streams end
            yield

    return lifespan
