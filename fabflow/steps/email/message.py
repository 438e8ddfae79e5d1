"""The message: checked subject and addresses, the ``Message-ID``, attachments, and the bytes.

Everything that can make a message wrong (CR/LF in the subject, addresses) is checked here,
before the first byte is sent. The ``Message-ID`` derives from the idempotency key, so every
attempt of one step visit sends the same id and receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
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
from email.utils import formatdate, parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from email_validator import EmailNotValidError, validate_email

from fabflow.errors import PermanentStepError
from fabflow.steps.templates import render

if TYPE_CHECKING:
    from fabflow.files import FileStore

log = logging.getLogger(__name__)

_WIRE = compat32.clone(linesep="\r\n")  # SMTP's line ending, also fine in an .eml file
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # quoted-printable keeps mostly-ASCII text readable in the raw mail
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (line breaks refused above)


@dataclass(frozen=True)
class Addresses:
    """Checked bare addresses (``ada@example.com``) by header."""

    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def envelope(self) -> list[str]:
        """Every address the server must deliver to, without duplicates."""
        return list(dict.fromkeys((*self.to, *self.cc, *self.bcc)))


def has_line_break(text: str) -> bool:
    """CR, LF or any other character that ``str.splitlines`` (and so some mail code) breaks on."""
    return any(c in text for c in _LINE_BREAKS)


def checked_subject(subject: str) -> str:
    """``subject``, unless a line break in it would let the text add headers of its own.
    Other control characters (NUL from order data, say) are dropped: no mail server takes
    them raw in a header, and they carry no meaning a person would miss; a tab is a space."""
    if has_line_break(subject):
        raise PermanentStepError(
            f"the rendered subject contains a line break ({subject!r}); refusing to send, "
            "since a line break in a header would let the text add headers of its own",
            error_type="header_injection",
        )
    return _CONTROLS.sub("", subject.replace("\t", " "))


def valid_addresses(addresses: list[str], context: dict[str, Any], field: str) -> list[str]:
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


def compose(
    from_header: str,
    mid: str,
    subject: str,
    body: str,
    addresses: Addresses,
    parts: list[Message],
) -> bytes:
    """The whole message, ready to send; Bcc addresses stay out of the headers."""
    headers = [("From", from_header), ("To", ", ".join(addresses.to))]
    if addresses.cc:
        headers.append(("Cc", ", ".join(addresses.cc)))
    headers += [("Subject", subject), ("Date", formatdate(usegmt=True)), ("Message-ID", mid)]
    plain = None if parts else plain_message(headers, body)
    return plain if plain is not None else mime_message(headers, body, parts)


def mime_message(headers: list[tuple[str, str]], body: str, parts: list[Message]) -> bytes:
    """The message as the compat32 MIME classes make it: any text, any attachments.
    (Not ``EmailMessage``: it parses back every header it is given, work these skip.)"""
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
    """The bytes the MIME classes make of a plain ASCII text message, made directly, without
    the header folding such a message does not need. None when any header or the body is
    outside the simple case (the caller then uses the MIME classes); tests check both ways
    agree byte for byte on everything this accepts."""
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


async def attachments(
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
        parts.append(_attachment(record, name, data))
    if missing:
        log.warning("production files missing, not attached: %s", missing)
    return parts, missing


def _attachment(record: dict[str, Any], name: str, data: bytes) -> Message:
    maintype, _, subtype = str(record.get("contentType") or "").partition("/")
    if not (maintype and subtype):
        maintype, subtype = "application", "octet-stream"
    part = MIMEBase(maintype, subtype)
    part.set_payload(data)
    encoders.encode_base64(part)
    filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _read_file(store: FileStore, key: str) -> bytes | None:
    try:
        if not key or not store.exists(key):
            return None
        return b"".join(store.iter_bytes(key))
    except (OSError, ValueError):
        return None
