"""What aiosmtplib, asyncio and ssl raise becomes the step error operators see."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from fabflow.errors import PermanentStepError, StepError, TransientStepError
from fabflow.steps.email.smtp import smtp_error

BUSY = aiosmtplib.SMTPRecipientRefused(451, "4.2.1 try later", "ada@example.com")
UNKNOWN = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 no such user", "bob@example.com")


def _connect_error_from(cause: BaseException) -> aiosmtplib.SMTPConnectError:
    try:
        raise aiosmtplib.SMTPConnectError("Error connecting to mail.example on port 465") from cause
    except aiosmtplib.SMTPConnectError as exc:
        return exc


CERT = ssl.SSLCertVerificationError(1, "certificate verify failed")


@pytest.mark.parametrize(
    ("exc", "kind", "error_type", "message"),
    [
        (
            aiosmtplib.SMTPDataError(451, "4.3.0 mailbox busy"),
            TransientStepError,
            "smtp",
            "the SMTP server answered 451 4.3.0 mailbox busy",
        ),
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            PermanentStepError,
            "smtp",
            "the SMTP server answered 535 5.7.8 bad credentials",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([UNKNOWN, BUSY]),
            TransientStepError,
            "smtp",
            "the SMTP server answered 451 4.2.1 try later",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([UNKNOWN]),
            PermanentStepError,
            "smtp",
            "the SMTP server answered 550 5.1.1 no such user",
        ),
        (
            aiosmtplib.SMTPConnectTimeoutError("Timed out connecting to mail.example"),
            TransientStepError,
            "timeout",
            "the SMTP server did not finish within 5 s",
        ),
        (
            TimeoutError(),
            TransientStepError,
            "timeout",
            "the SMTP server did not finish within 5 s",
        ),
        (CERT, PermanentStepError, "tls", "TLS with the SMTP server failed:"),
        (_connect_error_from(CERT), PermanentStepError, "tls", "TLS with the SMTP server failed:"),
        (
            _connect_error_from(ConnectionRefusedError(111, "Connect call failed")),
            TransientStepError,
            "connection",
            "could not talk to the SMTP server: Error connecting to mail.example",
        ),
        (
            aiosmtplib.SMTPNotSupported("SMTP AUTH extension not supported by server."),
            PermanentStepError,
            "smtp",
            "SMTP: SMTP AUTH extension not supported by server.",
        ),
        (
            aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"),
            TransientStepError,
            "connection",
            "could not talk to the SMTP server: Unexpected EOF received",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            TransientStepError,
            "connection",
            "could not talk to the SMTP server:",
        ),
    ],
)
def test_transport_errors_become_step_errors(
    exc: BaseException, kind: type[StepError], error_type: str, message: str
) -> None:
    error = smtp_error(exc, 5.0)
    assert type(error) is kind
    assert error.error_type == error_type
    assert str(error).startswith(message)


def test_an_smtp_reply_keeps_its_code_and_text() -> None:
    error = smtp_error(aiosmtplib.SMTPDataError(451, "4.3.0 mailbox busy"), 5.0)
    assert error is not None
    assert error.details == {"smtpCode": 451, "smtpReply": "4.3.0 mailbox busy"}


def test_an_error_no_table_row_names_is_left_alone() -> None:
    assert smtp_error(KeyError("bug"), 5.0) is None
