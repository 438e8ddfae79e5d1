"""A revoked key's open event stream ends within a second: it no longer receives the tenant's
events (the key was checked only when the stream opened)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from fabflow.store.repository import Store


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real HTTP server on 127.0.0.1 (a stream needs one); its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await task


async def test_a_revoked_keys_stream_ends_within_a_second(served: str, api_store: Store) -> None:
    key_id, key = api_store.create_api_key("acme", "to revoke")
    headers = {"Authorization": f"Bearer {key}"}
    client = httpx.AsyncClient(base_url=served, headers=headers, timeout=10)
    async with client, client.stream("GET", "/api/orders/stream") as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        await asyncio.sleep(0.6)  # the stream is polling
        api_store.revoke_api_key(key_id)
        revoked = time.monotonic()
        seen: list[str] = []
        async with asyncio.timeout(5):
            async for line in lines:
                seen.append(line)
        ended = time.monotonic() - revoked
    assert "event: revoked" in seen, seen
    assert ended < 1.0, ended
