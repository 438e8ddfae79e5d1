"""``fabflow worker``: run a worker on the configured store."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from fabflow.cli.app import app
from fabflow.cli.common import open_store, settings_from_env, with_secret_key
from fabflow.engine.runtime import started_executors, tune_collector
from fabflow.engine.webhooks import WebhookRunner
from fabflow.engine.worker import Worker
from fabflow.store.repository import Store


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Attempts run at once (env FABFLOW_CONCURRENCY, 16).")
    ] = None,
    burst: Annotated[
        bool, typer.Option(help="Run everything runnable now (expired leases too), then exit.")
    ] = False,
) -> None:
    """Run a worker on the configured store.

    The store is FABFLOW_DATABASE_URL, or the SQLite file in FABFLOW_DATA_DIR. SIGTERM or
    Ctrl-C stops claiming, lets running attempts finish within FABFLOW_SHUTDOWN_GRACE_SECONDS,
    releases the rest to other workers, then exits.
    """
    settings = with_secret_key(settings_from_env(concurrency=concurrency))
    store = open_store(settings, pre_ping=False)  # the worker retries lost connections itself
    try:
        asyncio.run(_work(store, burst))
    finally:
        store.close()


async def _work(store: Store, burst: bool) -> None:
    async with started_executors(store.settings) as executors:
        w = Worker(store, executors)
        webhooks = WebhookRunner(store)  # status webhooks, beside the worker
        tune_collector()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, w.stop)
        sending = None if burst else asyncio.create_task(webhooks.run())
        typer.echo(f"worker {w.id} running (concurrency {w.concurrency})", err=True)
        try:
            await w.run(burst=burst)
        finally:
            webhooks.stop()
            if sending is not None:
                await asyncio.gather(sending, return_exceptions=True)
        typer.echo(f"worker {w.id} stopped", err=True)
