"""Real servers on 127.0.0.1 for the step executor tests: an aiohttp receiver and aiosmtpd."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

ORDER: dict[str, Any] = {
    "id": "ord_123",
    "externalId": "SHOP-1001",
    "status": "received",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "quantity": 2, "parameters": {"text": "Ada"}}],
    "files": [],
    "data": {"note": "ünïcødé"},
}


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- HTTP -------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Receiver:
    """A real aiohttp server; tests set ``handler`` and read ``seen``."""

    url: str = ""
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    handler: Handler | None = None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        self.seen.append(
            Seen(request.method, request.path, dict(request.headers), body, tuple(peer[:2]))
        )
        if self.handler is None:
            return web.json_response({"ok": True})
        return await self.handler(request)


async def start_receiver(host: str = "127.0.0.1", port: int = 0) -> tuple[Receiver, web.AppRunner]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    receiver.port = int(runner.addresses[0][1])
    receiver.url = f"http://{host}:{receiver.port}"
    return receiver, runner


# --- SMTP -------------------------------------------------------------------------------


class MailHandler:
    """Records every accepted message; ``data_reply`` / ``rcpt_reply`` force an answer."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.data_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.sessions: set[int] = set()
        self.data_delay = 0.0  # seconds to wait before answering DATA

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.sessions.add(id(session))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        self.messages.append(envelope)
        return "250 2.0.0 queued as 42"


@dataclass
class MailServer:
    handler: MailHandler
    port: int
    controller: Controller


USERS = {"fab user": "pässword:/@"}


def authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and USERS.get(data.login.decode()) == (
        data.password.decode()
    )
    # handled=False: aiosmtpd itself answers 535 on failure.
    return AuthResult(success=ok, handled=False)


def start_mail_server(**kwargs: Any) -> MailServer:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return MailServer(handler, port, controller)


async def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until ``predicate()`` holds (servers in other threads record asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
