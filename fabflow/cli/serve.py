"""``fabflow serve``: the HTTP API, the web UI and N in-process workers in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Annotated

import typer
import uvicorn

from fabflow.cli.app import app
from fabflow.cli.common import open_store, settings_from_env, with_secret_key
from fabflow.server import create_server
from fabflow.settings import PREFIX, Settings

Host = Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")]
Port = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")]
Workers = Annotated[
    int, typer.Option(min=0, help="In-process workers (0: an API-only node; others run them).")
]
AccessLog = Annotated[bool, typer.Option(help="Log one line per request.")]


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    access_log: AccessLog = False,
) -> None:
    """Serve the API and the web UI, with N workers, on the configured store.

    SIGTERM or Ctrl-C stops taking requests and work, lets running attempts finish within
    FABFLOW_SHUTDOWN_GRACE_SECONDS, releases the rest to other workers, then exits.
    """
    settings = with_secret_key(settings_from_env(public_url=default_public_url(host, port)))
    run_server(settings, host, port, workers, access_log=access_log)


def default_public_url(host: str, port: int) -> str | None:
    """Where download links point when FABFLOW_PUBLIC_URL is unset: this server."""
    if os.environ.get(PREFIX + "PUBLIC_URL"):
        return None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, but a shutdown asked by SIGTERM or SIGINT exits 0 once drained, as
    ``fabflow worker`` does (uvicorn re-raises the signal, so the exit status says "killed")."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run_server(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    *,
    demo: bool = False,
    access_log: bool = False,
) -> None:
    """Run uvicorn with the composed app until a signal stops it (uvicorn handles SIGTERM and
    SIGINT; the app's shutdown then drains its workers)."""
    store = open_store(settings)
    try:
        server = create_server(settings, store, workers, demo=demo)
        config = uvicorn.Config(
            server,
            host=host,
            port=port,
            access_log=access_log,
            log_config=None,  # keep fabflow's logging set-up
            # Live event streams never end on their own: stop waiting for them after a while.
            timeout_graceful_shutdown=5,
            lifespan="on",
        )
        typer.echo(f"fabflow serving on http://{host}:{port} ({workers} worker(s))", err=True)
        asyncio.run(_Server(config).serve())
    finally:
        store.close()
