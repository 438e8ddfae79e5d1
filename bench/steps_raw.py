"""Throughput of the chosen clients alone, and of the step executors, against local servers.

``bench/steps.py`` imports the ``raw_*`` figures to compare with steps run through the engine.
Servers run in child processes so they do not share the client's interpreter (and GIL):
``start_http_server()`` and ``start_smtp_server()`` return ``(url or host, port, stop)``.

Run alone::

    .venv/bin/python -m bench.steps_raw [--seconds 3] [--concurrency 32]

prints ``raw_rest_per_s=``, ``rest_executor_per_s=``, ``raw_smtp_per_s=`` and
``email_executor_per_s=`` (executor figures call ``execute()`` directly, no engine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from fabflow.files import LocalFileStore
from fabflow.flows.options import ConsumeRestApiOptions, SendEmailOptions
from fabflow.settings import Settings
from fabflow.steps.base import StepContext, StepExecutor
from fabflow.steps.email import EmailStep
from fabflow.steps.rest import RestStep

Stopper = Callable[[], Awaitable[None]]

ORDER: dict[str, Any] = {
    "id": "ord_bench",
    "externalId": "SHOP-1001",
    "status": "received",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "quantity": 2, "parameters": {"text": "Ada"}}],
    "files": [],
    "data": {},
}
BODY = json.dumps(ORDER, separators=(",", ":")).encode()


# --- servers in child processes ---------------------------------------------------------


_RESPONSE = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


class _Receiver(asyncio.Protocol):
    """A lean HTTP/1.1 receiver (keep-alive, every request answered 200 with a small JSON
    body). It stands in for an ERP: the lighter it is, the less it takes from the two cores
    the client and the engine share with it, so the figures measure our side."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.write(_RESPONSE)


def _serve_http(conn: Connection) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            _Receiver, "127.0.0.1", 0, backlog=1024
        )
        conn.send(int(server.sockets[0].getsockname()[1]))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        server.close()

    uvloop.run(main())


def _serve_smtp(conn: Connection) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(port)
    conn.recv()
    controller.stop()


async def _start_child(target: Callable[[Connection], None]) -> tuple[int, Stopper]:
    context = multiprocessing.get_context("spawn")  # no inherited event loop or threads
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child,), daemon=True)
    process.start()
    port = int(await asyncio.to_thread(parent.recv))

    async def stop() -> None:
        parent.send("stop")
        await asyncio.to_thread(process.join, 5)
        if process.is_alive():
            process.terminate()

    return port, stop


async def start_http_server() -> tuple[str, int, Stopper]:
    """An aiohttp server answering every POST with 200 JSON, in a child process."""
    port, stop = await _start_child(_serve_http)
    return f"http://127.0.0.1:{port}/orders", port, stop


async def start_smtp_server() -> tuple[str, int, Stopper]:
    """An aiosmtpd server accepting every message, in a child process."""
    port, stop = await _start_child(_serve_smtp)
    return "127.0.0.1", port, stop


# --- a fixed-duration load loop ---------------------------------------------------------


async def _rate(worker: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> float:
    """Completed calls per second with ``concurrency`` tasks calling ``worker`` in a loop."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await worker()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


# --- raw clients ------------------------------------------------------------------------


async def raw_rest_per_s(url: str, concurrency: int = 32, seconds: float = 3.0) -> float:
    """POSTs per second with aiohttp alone: one session, keep-alive, ``concurrency`` tasks."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": "bench"}
    async with aiohttp.ClientSession() as session:

        async def post() -> None:
            async with session.post(url, data=BODY, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"bench server answered {resp.status}")

        await post()  # open the first connection outside the timed run
        return await _rate(post, concurrency, seconds)


async def raw_smtp_per_s(
    host: str, port: int, concurrency: int = 16, seconds: float = 3.0
) -> float:
    """Messages per second with aiosmtplib alone, one reused connection per task."""
    message = EmailMessage()
    message["From"] = "fabflow@localhost"
    message["To"] = "ada@example.com"
    message["Subject"] = "Order ord_bench is notified"
    message.set_content("Hello Ada Lovelace,\nyour order SHOP-1001 is on its way.\n")
    clients = [
        aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) for _ in range(concurrency)
    ]
    await asyncio.gather(*(c.connect() for c in clients))
    free = list(clients)

    async def send() -> None:
        client = free.pop()
        try:
            await client.send_message(message)
        finally:
            free.append(client)

    try:
        return await _rate(send, concurrency, seconds)
    finally:
        await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)


# --- the executors (no engine) ----------------------------------------------------------


def _ctx(settings: Settings, options: Any, step_type: str, scratch: Path) -> StepContext:
    return StepContext(
        order=ORDER,
        flow={"id": "bench", "name": "bench", "version": 1},
        step_id="step",
        step_type=step_type,
        success_status="done",
        options=options,
        timeout_s=30.0,
        idempotency_key="bench.step.1",
        attempt=1,
        settings=settings,
        files=LocalFileStore(scratch),
    )


async def _executor_rate(
    executor: StepExecutor, ctx: StepContext, concurrency: int, seconds: float
) -> float:
    await executor.start()
    try:
        await executor.execute(ctx)  # warm: first connection, template compile
        return await _rate(lambda: executor.execute(ctx), concurrency, seconds)
    finally:
        await executor.close()


async def rest_executor_per_s(url: str, concurrency: int = 32, seconds: float = 3.0) -> float:
    """RestStep.execute() calls per second (no engine, no store)."""
    settings = Settings(outbound_allow=("127.0.0.1",), concurrency=concurrency)
    options = ConsumeRestApiOptions.model_validate({"uri": url})
    with tempfile.TemporaryDirectory() as tmp:
        ctx = _ctx(settings, options, RestStep.type_name, Path(tmp))
        return await _executor_rate(RestStep(settings), ctx, concurrency, seconds)


async def email_executor_per_s(
    host: str, port: int, concurrency: int = 32, seconds: float = 3.0
) -> float:
    """EmailStep.execute() calls per second (templates rendered, addresses checked, sent)."""
    settings = Settings(smtp_url=f"smtp://{host}:{port}", concurrency=concurrency)
    options = SendEmailOptions.model_validate(
        {
            "recipients": ["{{ order.customer.email }}"],
            "subject": "Order {{ order.id }} is {{ step.successStatus }}",
            "message": "Hello {{ order.customer.name }},\nyour order is on its way.\n",
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        ctx = _ctx(settings, options, EmailStep.type_name, Path(tmp))
        return await _executor_rate(EmailStep(settings), ctx, concurrency, seconds)


async def _main(seconds: float, concurrency: int) -> None:
    url, _, stop_http = await start_http_server()
    try:
        print(f"raw_rest_per_s={await raw_rest_per_s(url, concurrency, seconds):.0f}")
        print(f"rest_executor_per_s={await rest_executor_per_s(url, concurrency, seconds):.0f}")
    finally:
        await stop_http()
    host, port, stop_smtp = await start_smtp_server()
    # The executor pools min(concurrency, 16) connections; the raw client gets as many.
    connections = max(1, min(concurrency, 16))
    try:
        raw = await raw_smtp_per_s(host, port, connections, seconds)
        print(f"raw_smtp_per_s={raw:.0f}")
        ours = await email_executor_per_s(host, port, concurrency, seconds)
        print(f"email_executor_per_s={ours:.0f}")
    finally:
        await stop_smtp()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(_main(args.seconds, args.concurrency))
