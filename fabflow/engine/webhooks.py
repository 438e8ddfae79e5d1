"""The webhook runner: fills the outbox from recorded events and sends what is due.

It runs beside the workers (``fabflow worker``, ``fabflow serve`` with workers) and never in
their way: with no enabled webhook it reads one row every ``idle_seconds``; otherwise it
dispatches and claims every ``poll_seconds`` (at once again while there is more). Sends go
through the outbound policy (``FABFLOW_OUTBOUND_ALLOW``), as the REST step's do, and carry
``Fabflow-Signature`` (the webhook's secret) and ``Fabflow-Event-Id``.

A send that fails on the network, times out, or is answered 408, 429 or 5xx is retried with
exponential backoff and jitter (honouring ``Retry-After``) until the delivery's day is over;
any other answer but 2xx fails it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from fabflow import __version__
from fabflow.steps.outbound import OutboundPolicy, OutboundRefused, PolicyResolver, literal_ip
from fabflow.steps.rest import parse_retry_after
from fabflow.steps.signing import HEADER, sign
from fabflow.store.repository import Store
from fabflow.store.webhooks import outbox
from fabflow.store.webhooks.outbox import FAILED, PENDING, SUCCEEDED, Claimed, SendResult

log = logging.getLogger(__name__)
EVENT_ID_HEADER = "Fabflow-Event-Id"


@dataclass(frozen=True)
class Backoff:
    """The delay before send ``n + 1`` after ``n`` failed: ``initial * factor**(n-1)`` up to
    ``maximum``, times a random 0.5 to 1 (so that receivers coming back are not stampeded)."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 3600.0

    def delay(self, failed: int, retry_after: float | None = None) -> float:
        base = min(self.initial * self.factor ** max(failed - 1, 0), self.maximum)
        jittered = base * random.uniform(0.5, 1.0)
        return max(jittered, min(retry_after or 0.0, self.maximum))


class WebhookRunner:
    """Dispatches events to deliveries and sends them, until ``stop``."""

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 0.5,
        idle_seconds: float = 2.0,
        lease_seconds: float = 60.0,
        timeout_seconds: float = 10.0,
        concurrency: int = 8,
        backoff: Backoff | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self.lease_seconds = max(lease_seconds, timeout_seconds * 2)
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.backoff = backoff or Backoff()
        self.policy = OutboundPolicy.from_allow(store.settings.outbound_allow)
        self._resolver = resolver
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._gaps = outbox.GapWatch()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Work until ``stop``; sends in flight then finish (their leases cover a crash)."""
        connector = aiohttp.TCPConnector(
            resolver=PolicyResolver(self.policy, self._resolver), enable_cleanup_closed=True
        )
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        async with aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            timeout=timeout,
        ) as session:
            while not self._stopping.is_set():
                pause = await self._round(session)
                if pause > 0:
                    await self._sleep(pause)
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _round(self, session: aiohttp.ClientSession) -> float:
        """One dispatch and claim; how long to pause before the next."""
        try:
            if not await asyncio.to_thread(outbox.has_enabled_webhooks, self.store):
                return self.idle_seconds
            added = await asyncio.to_thread(outbox.dispatch, self.store, self._gaps)
            room = self.concurrency - len(self._in_flight)
            claimed = []
            if room > 0:
                claimed = await asyncio.to_thread(
                    outbox.claim, self.store, self.lease_seconds, room
                )
        except Exception:
            log.exception("webhooks: dispatching or claiming failed; trying again")
            return self.poll_seconds * 4
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(session, delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return 0.0 if (added or claimed) and room > len(claimed) else self.poll_seconds

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _deliver(self, session: aiohttp.ClientSession, delivery: Claimed) -> None:
        result = await self.send(session, delivery)
        try:
            await asyncio.to_thread(outbox.record, self.store, delivery, result)
        except Exception:
            log.exception("webhooks: recording delivery %s failed", delivery.id)

    async def send(self, session: aiohttp.ClientSession, delivery: Claimed) -> SendResult:
        """Send one delivery; what it becomes."""
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"fabflow/{__version__}",
            HEADER: sign(delivery.secret, body),
            EVENT_ID_HEADER: delivery.event_id,
            "Fabflow-Event-Type": str(delivery.payload.get("type")),
            "Fabflow-Webhook-Id": delivery.webhook_id,
        }
        started = time.perf_counter()
        try:
            url = self._checked(delivery.url)
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.content.read(outbox.RESPONSE_LIMIT)).decode(
                    "utf-8", "replace"
                )
                ms = (time.perf_counter() - started) * 1000
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                return self._answered(delivery, response.status, ms, text, retry_after)
        except OutboundRefused as exc:
            return SendResult(FAILED, error=exc.message)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            refused = _refusal(exc)
            if refused is not None:
                return SendResult(FAILED, error=refused.message)
            ms = (time.perf_counter() - started) * 1000
            what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc!r}"
            return self._again(delivery, None, ms, None, f"the request {what}", None)

    def _checked(self, raw: str) -> URL:
        url = URL(raw)
        address = literal_ip(url.host or "")
        if address is not None:  # aiohttp skips the resolver for literal IPs
            self.policy.check(url.host or "", address)
        return url

    def _answered(
        self, delivery: Claimed, status: int, ms: float, text: str, retry_after: float | None
    ) -> SendResult:
        if 200 <= status < 300:
            return SendResult(SUCCEEDED, None, status, ms, text)
        if status in (408, 429) or status >= 500:
            error = f"answered HTTP {status}"
            return self._again(delivery, status, ms, text, error, retry_after)
        error = f"answered HTTP {status}: not retried (only 408, 429 and 5xx are)"
        return SendResult(FAILED, None, status, ms, text, error)

    def _again(
        self,
        delivery: Claimed,
        status: int | None,
        ms: float,
        text: str | None,
        error: str,
        retry_after: float | None,
    ) -> SendResult:
        at = time.time() + self.backoff.delay(delivery.attempts, retry_after)
        if at > delivery.retry_until:
            given_up = f"{error}; gave up after {delivery.attempts} attempts"
            return SendResult(FAILED, None, status, ms, text, given_up)
        return SendResult(PENDING, at, status, ms, text, error)


def _refusal(exc: BaseException) -> OutboundRefused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutboundRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
