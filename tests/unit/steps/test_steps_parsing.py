"""Small parsers of the REST and email steps: Retry-After, SMTP URLs, Message-IDs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fabflow.errors import ConfigError
from fabflow.steps.email.message import has_line_break, message_id
from fabflow.steps.email.smtp import SmtpTarget, parse_smtp_url
from fabflow.steps.rest import parse_retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("7", 7.0), (" 120 ", 120.0), ("soon", None), ("-3", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None and 85 <= seconds <= 90
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("smtp://mail.example.com", SmtpTarget("mail.example.com", 25, "plain")),
        ("smtp://mail.example.com:2525", SmtpTarget("mail.example.com", 2525, "plain")),
        (
            "smtp+starttls://user%40shop.example:p%3As%2Fs@mail.example.com",
            SmtpTarget("mail.example.com", 587, "starttls", "user@shop.example", "p:s/s"),
        ),
        ("smtps://u:@[::1]:4650", SmtpTarget("::1", 4650, "tls", "u", "")),
    ],
)
def test_smtp_url(url: str, target: SmtpTarget) -> None:
    assert parse_smtp_url(url) == target


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://user:secret@host:99999", "mail.example"]
)
def test_bad_smtp_url_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url(url)
    assert "FABFLOW_SMTP_URL" in caught.value.message
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(
    ("key", "mail_from", "expected"),
    [
        ("exec-1.mail.1", "orders@shop.example", "<exec-1.mail.1@shop.example>"),
        ("exec-1.mail.1", "Shop <orders@shop.example>", "<exec-1.mail.1@shop.example>"),
        ("e1", "", "<e1@fabflow>"),
    ],
)
def test_message_id(key: str, mail_from: str, expected: str) -> None:
    assert message_id(key, mail_from) == expected


def test_message_id_of_unusual_keys_stays_valid_and_distinct() -> None:
    a = message_id("exec 1:mail<1>", "o@shop.example")
    b = message_id("exec-1-mail-1-", "o@shop.example")
    assert a != b
    assert a.count("<") == 1 and " " not in a and ":" not in a


@pytest.mark.parametrize(
    ("text", "broken"),
    [("Order 1", False), ("a\rb", True), ("a\nb", True), ("a\u2028b", True), ("é ✓", False)],
)
def test_has_line_break(text: str, broken: bool) -> None:
    assert has_line_break(text) is broken
