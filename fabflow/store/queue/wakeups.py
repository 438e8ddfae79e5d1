"""Waking workers when another process makes an attempt runnable (PostgreSQL LISTEN/NOTIFY).

SQLite has no such channel: its workers poll, and wake at once for what their own process
enqueues (``Store.on_enqueue``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fabflow.store.db import CHANNEL

log = logging.getLogger(__name__)


class Listener:
    """Wakes a worker when another process commits a runnable attempt (PostgreSQL LISTEN).

    It listens on a connection of its own, in a thread of its own: a connection waiting in
    psycopg's ``notifies()`` cannot run queries. A lost connection is reopened with backoff;
    meanwhile the worker's poll still finds the work.
    """

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fabflow-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    self.wake()  # anything committed while we were away
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.wake()
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
