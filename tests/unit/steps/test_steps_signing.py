"""The Fabflow-Signature header: the sender's sign and the receiver's verify."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fabflow.steps.signing import sign, verify

BODY = b'{"id":"ord_1","status":"received"}'


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", BODY, timestamp=1700000000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(
    ("secret", "body", "now", "valid"),
    [
        ("s3cret", BODY, 1700000000, True),
        ("s3cret", BODY, 1700000299, True),
        ("s3cret", BODY, 1700000301, False),  # too old: a replay
        ("s3cret", BODY, 1699999600, False),  # from the future beyond tolerance
        ("wrong", BODY, 1700000000, False),
        ("s3cret", BODY + b" ", 1700000000, False),  # re-serialised or tampered body
    ],
)
def test_verify(secret: str, body: bytes, now: float, valid: bool) -> None:
    header = sign("s3cret", BODY, timestamp=1700000000)
    assert verify(secret, header, body, tolerance_s=300, now=now) is valid


@pytest.mark.parametrize(
    "header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1,t=2,v1=00"]
)
def test_malformed_headers_do_not_verify(header: str) -> None:
    assert verify("s3cret", header, BODY, now=1700000000) is False


def test_any_of_several_v1_values_may_match_during_rotation() -> None:
    new = sign("new", BODY, timestamp=1700000000)
    old_sig = sign("old", BODY, timestamp=1700000000).split("v1=")[1]
    header = f"{new},v1={old_sig}"
    assert verify("old", header, BODY, now=1700000000)
    assert verify("new", header, BODY, now=1700000000)
