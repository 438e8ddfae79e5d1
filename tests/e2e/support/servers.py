"""Receivers that record every side effect, in threads of their own.

The end-to-end tests drive worker processes from plain synchronous code (start, SIGKILL,
restart), so the receivers cannot live on the test's event loop: the HTTP receiver runs an
aiohttp server on a loop in its own thread, the SMTP receiver is aiosmtpd's threaded
controller. Both record what arrived with the key that identifies the side effect
(``Idempotency-Key``, ``Message-ID``), so that a test can count repeats.
"""

from __future__ import annotations

import asyncio
import email
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.integration.steps.step_servers import MailServer, start_mail_server


@dataclass(frozen=True)
class Hit:
    """One request as the receiver saw it."""

    path: str
    key: str | None
    order_id: str | None
    status: str | None
    arrived: float  # time.monotonic()
    # Requests with this key in flight when it arrived, itself included; 0 when its sender
    # was already gone (see ``RecordingHttp._handle``).
    in_flight_same_key: int
    update_url: str | None = None  # the order's updateUrl, sent when the step waits
    # The order's stepData as sent (not compared, so that a Hit stays hashable).
    step_data: dict[str, Any] | None = field(default=None, compare=False)


@dataclass
class RecordingHttp:
    """An HTTP receiver that answers ``answer`` (200) after ``delay(hit)`` seconds and
    records each hit.

    ``in_flight`` counts requests per key that arrived and have not been answered yet, nor
    dropped by a client that went away.
    """

    delay: Callable[[Hit], float] = lambda _hit: 0.0
    on_hit: Callable[[Hit], None] = lambda _hit: None
    answer: int = 200  # 202 for a receiver that calls back later (waitForCallback)
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    in_flight: Counter[str | None] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def start(self) -> RecordingHttp:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self.url:
            raise RuntimeError("the HTTP receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def keys(self, path: str | None = None) -> Counter[str | None]:
        """How many times each key arrived (on ``path``, or anywhere)."""
        with self._lock:
            return Counter(h.key for h in self.hits if path is None or h.path == path)

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._setup())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _setup(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A handler whose client went away (killed, or its attempt stopped) is cancelled, so
        # that it stops counting as in flight: two requests with one key in flight then mean
        # two live senders.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Requests still held (their client was killed) end here, not with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        # A request whose sender died before it was handled (its bytes waited in the socket
        # while this loop was held up) arrived all the same, but no live sender waits for
        # it: a turn of the loop lets its closed connection show (and cancels this handler),
        # and such a request is recorded without counting as in flight.
        cancelled = False
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            cancelled = True
        transport = request.transport
        alive = not cancelled and transport is not None and not transport.is_closing()
        order = _json(body)
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            self.in_flight[key] += alive
            hit = Hit(
                request.path,
                key,
                order.get("id"),
                order.get("status"),
                time.monotonic(),
                self.in_flight[key] if alive else 0,
                order.get("updateUrl"),
                order.get("stepData"),
            )
            self.hits.append(hit)
        if not alive:
            raise asyncio.CancelledError  # nobody to answer
        try:
            self.on_hit(hit)
            await asyncio.sleep(self.delay(hit))
            return web.json_response({"received": key}, status=self.answer)
        finally:
            with self._lock:
                self.in_flight[key] -= 1


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class RecordingSmtp:
    """aiosmtpd in its own thread; ``message_ids()`` counts every accepted message."""

    server: MailServer

    @classmethod
    def start(cls, data_delay: float = 0.0) -> RecordingSmtp:
        server = start_mail_server()
        server.handler.data_delay = data_delay
        return cls(server)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.server.port}"

    def message_ids(self) -> Counter[str | None]:
        found: Counter[str | None] = Counter()
        for envelope in list(self.server.handler.messages):
            raw = envelope.original_content or envelope.content or b""
            data = raw if isinstance(raw, bytes) else raw.encode()
            found[email.message_from_bytes(data).get("Message-ID")] += 1
        return found

    def stop(self) -> None:
        self.server.controller.stop()
