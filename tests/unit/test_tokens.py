"""Callback tokens: only the installation's key makes one, and each names its step visit."""

from __future__ import annotations

import pytest

from fabflow.tokens import hash_token, make_callback_token, visit_of


@pytest.mark.parametrize("token", ["", "x", "exe_1.1.", "exe_1.1.ß", "nodot", "exe_1.1.AAAA"])
def test_a_made_up_token_names_no_visit(token: str) -> None:
    assert visit_of("secret", token) is None


def test_a_token_names_its_visit_under_its_key_only() -> None:
    token = make_callback_token("secret", "exe_1.2")
    assert visit_of("secret", token) == "exe_1.2"
    assert visit_of("other", token) is None
    assert make_callback_token("secret", "exe_1.3") != token
    assert len(hash_token(token)) == 64 and token not in hash_token(token)
