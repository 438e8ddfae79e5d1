"""The bytes of an email: the direct path for plain ASCII messages makes exactly what the MIME
classes make, and leaves everything else to them."""

from __future__ import annotations

import email
from email.policy import default

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fabflow.errors import PermanentStepError
from fabflow.steps.email.message import checked_subject, mime_message, plain_message

DATE = "Fri, 27 Nov 2026 06:17:55 GMT"
ASCII = st.characters(min_codepoint=0, max_codepoint=127, blacklist_characters="\r\n")
# Header-like text: mostly words and spaces, sometimes symbols, tabs, runs of spaces, "=?".
WORDS = st.lists(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1), max_size=9
)
HEADER_TEXT = WORDS.map(" ".join) | st.text(
    st.sampled_from(list("ab XYZ09.,;:<>@=?\"'()\t-_")) | ASCII, min_size=0, max_size=90
)
BODY_TEXT = st.lists(
    st.sampled_from(["Hello", " ", "\n", "From ", ">From", "\r", "é", ".", "\t", "x" * 100])
    | ASCII,
    max_size=40,
).map("".join)


def _headers(subject: str, to: str) -> list[tuple[str, str]]:
    return [
        ("From", "Fabflow <fabflow@example.com>"),
        ("To", to),
        ("Subject", subject),
        ("Date", DATE),
        ("Message-ID", "<ord_1.1@example.com>"),
    ]


@settings(max_examples=400)
@given(subject=HEADER_TEXT, to=HEADER_TEXT, body=BODY_TEXT)
@example(subject="Order ord_1 is ready", to="ops@example.com", body="Hello Ada,\nbye\n")
@example(subject="Order  two  spaces", to="a@b.c", body="x")
@example(subject=" leading", to="a@b.c", body="")
@example(subject="x" * 70, to="a@b.c", body="From here\n")
def test_the_direct_path_makes_what_the_mime_classes_make(subject: str, to: str, body: str) -> None:
    headers = _headers(subject, to)
    plain = plain_message(headers, body)
    if plain is not None:
        assert plain == mime_message(headers, body, [])


def test_a_plain_message_takes_the_direct_path_and_reads_back() -> None:
    headers = _headers("Order ord_1 is ready", "ops@example.com, sales@example.com")
    data = plain_message(headers, "Hello Ada,\nyour order is ready.\n")
    assert data is not None
    parsed = email.message_from_bytes(data, policy=default)
    assert parsed["Subject"] == "Order ord_1 is ready"
    assert parsed["To"] == "ops@example.com, sales@example.com"
    assert parsed.get_content() == "Hello Ada,\r\nyour order is ready.\r\n"  # as sent
    assert b"\r\n\r\nHello Ada,\r\nyour order is ready.\r\n" in data


def test_what_needs_encoding_or_folding_is_left_to_the_mime_classes() -> None:
    assert plain_message(_headers("Bestellung für Ada", "a@b.c"), "x") is None
    assert plain_message(_headers("x" * 80, "a@b.c"), "x") is None
    assert plain_message(_headers("Order", "a@b.c"), "Grüße") is None
    assert plain_message(_headers("Order", "a@b.c"), "From the shop\n") is None
    assert plain_message(_headers("Order", "a@b.c"), "line\r\nline") is None


@pytest.mark.parametrize(
    ("subject", "sent"),
    [
        ("Order\x00 1", "Order 1"),
        ("Order\t1", "Order 1"),
        ("Bell\x07 and DEL\x7f", "Bell and DEL"),
        ("Zoë ✓", "Zoë ✓"),
    ],
)
def test_control_characters_never_reach_a_subject(subject: str, sent: str) -> None:
    assert checked_subject(subject) == sent


@pytest.mark.parametrize("subject", ["a\r\nBcc: x@example.com", "a\nb", "a\u2028b", "a\x85b"])
def test_a_line_break_in_a_subject_is_refused(subject: str) -> None:
    with pytest.raises(PermanentStepError) as refused:
        checked_subject(subject)
    assert refused.value.error_type == "header_injection"
