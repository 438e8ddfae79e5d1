"""The SMTP transport: the ``FABFLOW_SMTP_URL``, TLS, a pool of connections, and the one table
that turns aiosmtplib's (and asyncio's, and ssl's) errors into step errors."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from fabflow.errors import (
    ConfigError,
    ErrorTable,
    PermanentStepError,
    StepError,
    TransientStepError,
    translate,
)

_MODES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed ``FABFLOW_SMTP_URL``."""

    host: str
    port: int
    mode: str  # plain | starttls | tls
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Read ``smtp[+starttls|s]://[user:pass@]host[:port]``; user and password are URL-decoded."""
    parts = urlsplit(url)
    if parts.scheme not in _MODES or not parts.hostname:
        raise ConfigError(
            "FABFLOW_SMTP_URL must look like smtp://host:port, smtp+starttls://user:pass@host:587 "
            f"or smtps://user:pass@host:465, not {_redact(url)!r}"
        )
    mode, default_port = _MODES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError(f"FABFLOW_SMTP_URL has an invalid port: {_redact(url)!r}") from exc
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpTarget(parts.hostname, port, mode, user, password)


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def tls_context(ca_file: str) -> ssl.SSLContext:
    """The system's trust store, plus ``ca_file`` when given (a private CA, a test CA)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class SmtpPool:
    """Up to ``size`` SMTP connections, kept open and reused across messages.

    A connection that failed in any way is closed rather than returned: its session state is
    unknown. A reused connection that the server had dropped while idle is replaced once.
    """

    def __init__(self, target: SmtpTarget, context: ssl.SSLContext, size: int) -> None:
        self.target = target
        self.context = context
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)
        self._local_hostname: str | None = None

    async def send(
        self, message: bytes, sender: str, recipients: list[str]
    ) -> tuple[dict[str, Any], str]:
        """Send one message; aiosmtplib's errors propagate (``smtp_error`` translates them)."""
        async with self._slots:
            client, reused = await self._take()
            try:
                result = await client.sendmail(sender, recipients, message)
            except aiosmtplib.SMTPServerDisconnected:
                client.close()
                if not reused:
                    raise
                client = await self._connect()  # the server closed it while idle: one fresh try
                result = await self._send_or_close(client, message, sender, recipients)
            except BaseException:
                client.close()
                raise
            self._idle.append(client)
            return result

    async def _send_or_close(
        self, client: aiosmtplib.SMTP, message: bytes, sender: str, recipients: list[str]
    ) -> tuple[dict[str, Any], str]:
        try:
            return await client.sendmail(sender, recipients, message)
        except BaseException:
            client.close()
            raise

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            client.close()
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._local_hostname is None:
            # getfqdn may ask DNS; once per process is enough.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        t = self.target
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            username=t.username,
            password=t.password,
            use_tls=t.mode == "tls",
            start_tls=t.mode == "starttls",  # smtp:// stays plain: no surprise certificate checks
            tls_context=self.context if t.mode != "plain" else None,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return client

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                async with asyncio.timeout(2):
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def smtp_error(exc: BaseException, timeout_s: float) -> StepError | None:
    """The step error for what sending raised (4xx and connection trouble transient, 5xx
    permanent), or None for an error that is not the transport's."""
    return translate(exc, _SMTP_ERRORS, timeout_s)


def _reply(exc: aiosmtplib.SMTPResponseException, timeout_s: float) -> StepError:
    details = {"smtpCode": exc.code, "smtpReply": exc.message}
    text = f"the SMTP server answered {exc.code} {exc.message}"
    if 400 <= exc.code < 500:
        return TransientStepError(text, error_type="smtp", details=details)
    return PermanentStepError(text, error_type="smtp", details=details)


def _recipients_refused(exc: aiosmtplib.SMTPRecipientsRefused, timeout_s: float) -> StepError:
    if not exc.recipients:
        return _unreachable(exc, timeout_s)
    # The lowest code decides: any 4xx makes the whole try worth a retry.
    return _reply(min(exc.recipients, key=lambda r: r.code), timeout_s)


def _timed_out(exc: TimeoutError, timeout_s: float) -> StepError:
    return TransientStepError(
        f"the SMTP server did not finish within {timeout_s:g} s", error_type="timeout"
    )


def _tls_failed(exc: Exception, timeout_s: float) -> StepError:
    return PermanentStepError(
        f"TLS with the SMTP server failed: {exc} (FABFLOW_SMTP_CA_FILE adds a CA)",
        error_type="tls",
    )


def _not_supported(exc: aiosmtplib.SMTPNotSupported, timeout_s: float) -> StepError:
    return PermanentStepError(f"SMTP: {exc}", error_type="smtp")


def _unreachable(exc: Exception, timeout_s: float) -> StepError:
    if isinstance(exc.__cause__, ssl.SSLCertVerificationError):  # smtps:// connect wraps it
        return _tls_failed(exc, timeout_s)
    return TransientStepError(f"could not talk to the SMTP server: {exc}", error_type="connection")


# The nearest class in an exception's MRO wins, so subclasses are listed beside their bases.
_SMTP_ERRORS: ErrorTable[float, StepError] = {
    aiosmtplib.SMTPRecipientsRefused: _recipients_refused,
    aiosmtplib.SMTPResponseException: _reply,
    aiosmtplib.SMTPTimeoutError: _timed_out,  # also an SMTPException, nearer in its MRO
    TimeoutError: _timed_out,  # the step's deadline
    ssl.SSLCertVerificationError: _tls_failed,
    aiosmtplib.SMTPNotSupported: _not_supported,
    aiosmtplib.SMTPException: _unreachable,
    OSError: _unreachable,
}
