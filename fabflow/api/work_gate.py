"""CPU work the API does for callers (product previews, model uploads), kept from starving it.

At most ``total`` run at once in a server, each in a thread; a tenant has at most
``per_tenant`` in flight (running or waiting). Waiting happens on the event loop, before a
thread is taken, so a flood of previews holds no thread and ``/api/health`` and other tenants'
requests still answer. Past a tenant's share, or after waiting ``wait_s``, the caller gets
``429`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.responses import Response

from fabflow.api.errors import TooManyRequests, body, error_response

PREVIEWS_AT_ONCE = 2
PER_TENANT = 4
WAIT_S = 30.0


class TooBusy(TooManyRequests):
    """The tenant's share of the server's preview and upload work is taken."""


RETRY_AFTER_S = "2"


def too_busy_response(exc: TooBusy) -> Response:
    """429 with ``Retry-After``: the request may be sent again as it is."""
    return error_response(429, body(exc.code, exc.message), **{"Retry-After": RETRY_AFTER_S})


class WorkGate:
    """See the module docstring. One per app (asyncio primitives belong to its loop)."""

    def __init__(
        self, total: int = PREVIEWS_AT_ONCE, per_tenant: int = PER_TENANT, wait_s: float = WAIT_S
    ) -> None:
        self.per_tenant, self.wait_s = per_tenant, wait_s
        self._slots = asyncio.Semaphore(total)
        self._in_flight: Counter[str] = Counter()

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one of the server's slots for ``tenant`` while the block runs."""
        if self._in_flight[tenant] >= self.per_tenant:
            raise TooBusy(
                f"{self.per_tenant} previews or uploads of this tenant are already running or"
                " waiting: try again in a moment"
            )
        self._in_flight[tenant] += 1
        try:
            try:
                async with asyncio.timeout(self.wait_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise TooBusy("the server is busy with other previews: try again") from None
            try:
                yield
            finally:
                self._slots.release()
        finally:
            self._in_flight[tenant] -= 1
            if not self._in_flight[tenant]:
                del self._in_flight[tenant]
