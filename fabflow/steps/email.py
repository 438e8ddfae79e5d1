"""send-email: render the templates, check every header, then send over SMTP (DESIGN 3.2).

``FABFLOW_SMTP_URL`` picks the transport: ``smtp://`` (plain), ``smtp+starttls://`` (STARTTLS
required), ``smtps://`` (TLS from the first byte), each with optional ``user:password@`` and
``:port``. Connections are pooled and reused across messages. With no SMTP URL the message is
written to ``<data dir>/outbox/<idempotency key>.eml`` instead, and the log says where.

Everything that can make a message wrong (templates, CR/LF in the subject, addresses) is checked
before the first byte is sent. The ``Message-ID`` derives from the idempotency key, so every
attempt of one step visit sends the same id and receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import socket
import ssl
from dataclasses import dataclass
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlsplit

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from fabflow.errors import ConfigError, PermanentStepError, TransientStepError
from fabflow.files import safe_part
from fabflow.flows.options import SendEmailOptions
from fabflow.steps.base import StepContext, StepExecutor, StepResult, within_deadline
from fabflow.steps.templates import render

if TYPE_CHECKING:
    from fabflow.files import FileStore
    from fabflow.settings import Settings

log = logging.getLogger(__name__)

_WIRE = compat32.clone(linesep="\r\n")  # SMTP's line ending, also fine in an .eml file
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # quoted-printable keeps mostly-ASCII text readable in the raw mail
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
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
        """Send one message; aiosmtplib's errors propagate for the caller to classify."""
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


@dataclass(frozen=True)
class _Addresses:
    """Checked bare addresses (``ada@example.com``) by header."""

    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def envelope(self) -> list[str]:
        """Every address the server must deliver to, without duplicates."""
        return list(dict.fromkeys((*self.to, *self.cc, *self.bcc)))


class EmailStep(StepExecutor):
    """Renders subject and message, then sends them (or writes them to the outbox)."""

    type_name = "send-email"
    options_model = SendEmailOptions

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        name, address = parseaddr(settings.mail_from)
        self._sender = address or settings.mail_from
        self._from_header = formataddr((name, self._sender), charset="utf-8")
        self._pool: SmtpPool | None = None

    async def start(self) -> None:
        """Prepare the connection pool (connections open on first use)."""
        if self.target is None:
            log.info("FABFLOW_SMTP_URL is not set: emails go to %s", self.settings.outbox_dir)
        elif self._pool is None:
            context = tls_context(self.settings.smtp_ca_file)
            size = max(1, min(self.settings.concurrency, 16))
            self._pool = SmtpPool(self.target, context, size)

    async def close(self) -> None:
        """Close pooled connections."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def execute(self, ctx: StepContext) -> StepResult:
        """Build the message, refusing anything unsafe before sending, then deliver it."""
        options: SendEmailOptions = ctx.options
        context = ctx.template_context
        subject = render(options.subject, context, "subject")
        body = render(options.message, context, "message")
        if has_line_break(subject):
            raise PermanentStepError(
                f"the rendered subject contains a line break ({subject!r}); refusing to send, "
                "since a line break in a header would let the text add headers of its own",
                error_type="header_injection",
            )
        addresses = _Addresses(
            _valid(options.recipients, context, "recipients"),
            _valid(options.cc, context, "cc"),
            _valid(options.bcc, context, "bcc"),
        )
        parts: list[Message] = []
        missing: list[str] = []
        if options.attach_production_files:
            parts, missing = await _attachments(list(ctx.stored_files), ctx.files)
        mid = message_id(ctx.idempotency_key, self._sender)
        data = self._message(mid, subject, body, addresses, parts)
        details = await self._deliver(ctx, data, addresses.envelope)
        details["messageId"] = mid
        if missing:
            details["missingAttachments"] = missing
        return StepResult(details=details)

    def _message(
        self, mid: str, subject: str, body: str, addresses: _Addresses, parts: list[Message]
    ) -> bytes:
        headers = [("From", self._from_header), ("To", ", ".join(addresses.to))]
        if addresses.cc:
            headers.append(("Cc", ", ".join(addresses.cc)))
        headers += [("Subject", subject), ("Date", formatdate(usegmt=True)), ("Message-ID", mid)]
        plain = None if parts else plain_message(headers, body)
        return plain if plain is not None else mime_message(headers, body, parts)

    async def _deliver(
        self, ctx: StepContext, data: bytes, recipients: list[str]
    ) -> dict[str, Any]:
        if self._pool is None and self.target is not None:
            await self.start()
        if self._pool is None:
            path = await asyncio.to_thread(write_outbox, self.settings.outbox_dir, ctx, data)
            log.info("step %s: no SMTP configured, wrote the email to %s", ctx.step_id, path)
            return {"outbox": str(path)}
        sending = self._pool.send(data, self._sender, recipients)
        try:  # cut off mid-message, the pool closes the connection
            refused, reply = await within_deadline(ctx, sending)
        except Exception as exc:  # CancelledError passes: the worker is stopping us
            _raise_smtp_error(exc, ctx.timeout_s)
        details: dict[str, Any] = {"smtpReply": reply, "recipients": len(recipients) - len(refused)}
        if refused:
            details["refusedRecipients"] = {a: str(r) for a, r in refused.items()}
        return details


def mime_message(headers: list[tuple[str, str]], body: str, parts: list[Message]) -> bytes:
    """The message as the compat32 MIME classes make it: any text, any attachments.
    (Not EmailMessage: these build the same message about seven times faster, because they
    do not parse back every header they are given.)"""
    message: Message[Any, Any] = _text_part(body)
    if parts:
        message = MIMEMultipart("mixed", _subparts=[message, *parts])
    for name, value in headers:
        if name == "Subject" and not value.isascii():
            message[name] = Header(value, "utf-8")
        else:
            message[name] = value
    return message.as_bytes(policy=_WIRE)


# What the MIME classes write first for an ASCII text part.
_PLAIN_PREAMBLE = (
    b'Content-Type: text/plain; charset="us-ascii"\r\n'
    b"MIME-Version: 1.0\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
)
_FITS_ONE_LINE = 78  # compat32 folds a longer header line
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII words, one space apart
_MANGLED = re.compile(r"^From ", re.MULTILINE)  # compat32 writes these body lines as ">From "


def plain_message(headers: list[tuple[str, str]], body: str) -> bytes | None:
    """The bytes the MIME classes make of a plain ASCII text message, made directly: they
    take about 250 µs a message, most of it folding header lines that need no folding. None
    when any header or the body is outside the simple case (the caller then uses the MIME
    classes); tests check both ways agree byte for byte on everything this accepts."""
    if not body.isascii() or "\r" in body or _MANGLED.search(body):
        return None
    lines = [_PLAIN_PREAMBLE]
    for name, value in headers:
        if len(name) + 2 + len(value) > _FITS_ONE_LINE or not _PLAIN_VALUE.fullmatch(value):
            return None
        lines.append(f"{name}: {value}\r\n".encode("ascii"))
    lines.append(b"\r\n")
    lines.append(body.replace("\n", "\r\n").encode("ascii"))
    return b"".join(lines)


def _text_part(body: str) -> MIMENonMultipart:
    if body.isascii():
        return MIMEText(body, "plain", "us-ascii")
    part = MIMENonMultipart("text", "plain")
    part.set_payload(body, _UTF8_QP)  # quoted-printable rather than utf-8's default base64
    return part


def has_line_break(text: str) -> bool:
    """CR, LF or any other character that ``str.splitlines`` (and so some mail code) breaks on."""
    return any(c in text for c in _LINE_BREAKS)


def _valid(addresses: list[str], context: dict[str, Any], field: str) -> list[str]:
    """Addresses rendered (``{{ order.customer.email }}``), checked, in their ASCII form."""
    result: list[str] = []
    for i, source in enumerate(addresses):
        address = render(source, context, f"{field}[{i}]") if "{{" in source else source
        if has_line_break(address):
            raise PermanentStepError(
                f"address {address!r} contains a line break; refusing to send",
                error_type="header_injection",
            )
        checked, problem = _check_address(address)
        if problem:
            raise PermanentStepError(
                f"invalid email address {address!r} in {field}: {problem}", error_type="recipient"
            )
        result.append(checked)
    return list(dict.fromkeys(result))  # a template may render to an address already listed


@lru_cache(maxsize=4096)
def _check_address(address: str) -> tuple[str, str]:
    """(the ASCII address, "") or ("", the problem); cached: flows repeat a few addresses."""
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return "", str(exc)
    if valid.ascii_email is None:
        return "", "non-ASCII characters before the @ need SMTPUTF8, which fabflow does not send"
    return valid.ascii_email, ""


@lru_cache(maxsize=64)
def _domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "fabflow"


def message_id(idempotency_key: str, mail_from: str) -> str:
    """A ``Message-ID`` that is the same for every attempt of one step visit."""
    domain = _domain(mail_from)
    left = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]", "-", idempotency_key).strip(".")
    left = re.sub(r"\.{2,}", ".", left)
    if left != idempotency_key:
        # Replaced characters could make two keys look alike; a hash of the original keeps
        # the ids apart.
        left += "." + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
    return f"<{left or 'fabflow'}@{domain}>"


def write_outbox(outbox: Path, ctx: StepContext, data: bytes) -> Path:
    """Write the message atomically as ``<outbox>/<idempotency key>.eml``; return the path."""
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox / f"{safe_part(ctx.idempotency_key)}.eml"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # a reader never sees half a message
    return target


async def _attachments(
    files: list[dict[str, Any]], store: FileStore
) -> tuple[list[Message], list[str]]:
    """A MIME part per production file that exists, and the names of those that do not."""
    parts: list[Message] = []
    missing: list[str] = []
    for record in files:
        key = str(record.get("key", ""))
        name = str(record.get("name") or key.rpartition("/")[2] or "file")
        data = await asyncio.to_thread(_read_file, store, key)
        if data is None:
            missing.append(name)
            continue
        maintype, _, subtype = str(record.get("contentType") or "").partition("/")
        if not (maintype and subtype):
            maintype, subtype = "application", "octet-stream"
        part = MIMEBase(maintype, subtype)
        part.set_payload(data)
        encoders.encode_base64(part)
        filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
        part.add_header("Content-Disposition", "attachment", filename=filename)
        parts.append(part)
    if missing:
        log.warning("production files missing, not attached: %s", missing)
    return parts, missing


def _read_file(store: FileStore, key: str) -> bytes | None:
    try:
        if not key or not store.exists(key):
            return None
        return b"".join(store.iter_bytes(key))
    except (OSError, ValueError):
        return None


def _raise_smtp_error(exc: Exception, timeout_s: float) -> NoReturn:
    """Translate aiosmtplib's errors: 4xx and connection trouble transient, 5xx permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = min(exc.recipients, key=lambda r: r.code)  # any 4xx makes the whole try worth a retry
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        details = {"smtpCode": exc.code, "smtpReply": exc.message}
        text = f"the SMTP server answered {exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            raise TransientStepError(text, error_type="smtp", details=details) from exc
        raise PermanentStepError(text, error_type="smtp", details=details) from exc
    if isinstance(exc, TimeoutError):
        raise TransientStepError(
            f"the SMTP server did not finish within {timeout_s:g} s", error_type="timeout"
        ) from exc
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        raise PermanentStepError(
            f"TLS with the SMTP server failed: {exc} (FABFLOW_SMTP_CA_FILE adds a CA)",
            error_type="tls",
        ) from exc
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        raise PermanentStepError(f"SMTP: {exc}", error_type="smtp") from exc
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        raise TransientStepError(
            f"could not talk to the SMTP server: {exc}", error_type="connection"
        ) from exc
    raise exc
