"""Fixtures for the step executor tests: servers from ``step_servers``, a context builder."""

from __future__ import annotations

import copy
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from fabflow.files import LocalFileStore
from fabflow.settings import Settings
from fabflow.steps.base import StepContext
from tests.integration.steps.step_servers import (
    ORDER,
    MailServer,
    Receiver,
    authenticate,
    free_port,
    start_mail_server,
    start_receiver,
)


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., StepContext]:
    """Build a StepContext the way the engine would, with overridable fields."""

    def build(settings: Settings, options: Any, **changes: Any) -> StepContext:
        values: dict[str, Any] = {
            "order": copy.deepcopy(ORDER),
            "flow": {"id": "default", "name": "Default", "version": 1},
            "step_id": "notify",
            "step_type": "test",
            "success_status": "notified",
            "options": options,
            "timeout_s": 5.0,
            "idempotency_key": "exec-1.notify.1",
            "attempt": 1,
            "settings": settings,
            "files": LocalFileStore(tmp_path / "files"),
        }
        values.update(changes)
        return StepContext(**values)

    return build


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An HTTP receiver on 127.0.0.1 with a free port."""
    rec, runner = await start_receiver()
    yield rec
    await runner.cleanup()


@pytest.fixture
async def receiver_on() -> AsyncIterator[Callable[[str, int], Awaitable[Receiver]]]:
    """Start more receivers on chosen addresses (stopped after the test)."""
    runners: list[web.AppRunner] = []

    async def start(host: str, port: int = 0) -> Receiver:
        rec, runner = await start_receiver(host, port)
        runners.append(runner)
        return rec

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    return free_port()


@pytest.fixture
def order() -> dict[str, Any]:
    """The order resource the executors are given (a fresh copy)."""
    return copy.deepcopy(ORDER)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A plain SMTP server on 127.0.0.1."""
    server = start_mail_server()
    yield server
    server.controller.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def starttls_server(server_tls: ssl.SSLContext) -> Iterator[MailServer]:
    """SMTP requiring STARTTLS and AUTH (over TLS)."""
    server = start_mail_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    yield server
    server.controller.stop()


@pytest.fixture
def smtps_server(server_tls: ssl.SSLContext) -> Iterator[MailServer]:
    """SMTP over TLS from the first byte."""
    server = start_mail_server(ssl_context=server_tls)
    yield server
    server.controller.stop()


@pytest.fixture
def auth_server() -> Iterator[MailServer]:
    """Plain SMTP with AUTH required (allowed without TLS, on loopback, for the test)."""
    server = start_mail_server(
        authenticator=authenticate, auth_required=True, auth_require_tls=False
    )
    yield server
    server.controller.stop()
