"""Pure parts of templated requests and secrets: the URI's template split, redaction, which
steps get secrets, and the key (file, rotation, a wrong key)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from fabflow.errors import ConfigError
from fabflow.flows.options import parse_uri_template
from fabflow.flows.validate import load_flow
from fabflow.settings import Settings
from fabflow.steps.redact import forms, redact
from fabflow.store.secrets import SecretBox, steps_reading_secrets, with_key


@pytest.mark.parametrize(
    ("uri", "base", "query", "fragment"),
    [
        (
            "https://a.example/x?id={{ order.id }}",
            "https://a.example/x",
            (("id", "{{ order.id }}"),),
            "",
        ),
        (
            "https://a.example/x?a=1&b=B-{{ x }}&c#top",
            "https://a.example/x",
            (("a", "1"), ("b", "B-{{ x }}"), ("c", None)),
            "#top",
        ),
        # A template holding the characters that split a query is still one value.
        (
            "http://a.example?q={{ '&=#?' }}&r=2",
            "http://a.example",
            (("q", "{{ '&=#?' }}"), ("r", "2")),
            "",
        ),
        (
            "https://a.example/x?v={% if x %}1{% endif %}",
            "https://a.example/x",
            (("v", "{% if x %}1{% endif %}"),),
            "",
        ),
    ],
)
def test_a_templated_uri_splits_into_literal_base_and_query_values(
    uri: str, base: str, query: tuple[tuple[str, str | None], ...], fragment: str
) -> None:
    parsed = parse_uri_template(uri)
    assert (parsed.base, parsed.query, parsed.fragment) == (base, query, fragment)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Bearer tok-1", "Bearer [secret]"),
        (
            {"auth": "Bearer tok-1", "n": 1, "list": ["x tok-1 y"]},
            {"auth": "Bearer [secret]", "n": 1, "list": ["x [secret] y"]},
        ),
        ("?key=a%2Fb%26c", "?key=[secret]"),  # URL-encoded, as a query value is sent
        ({"tok-1": True}, {"[secret]": True}),
        ("nothing here", "nothing here"),
    ],
)
def test_redaction_replaces_every_form_of_every_value(data: object, expected: object) -> None:
    assert redact(data, forms(["tok-1", "a/b&c"])) == expected


def test_only_steps_whose_options_mention_secrets_get_them() -> None:
    send = {"type": "consume-rest-api", "successStatus": "S"}
    flow = load_flow(
        [
            {
                "stepDefinitionId": "a",
                **send,
                "options": {"uri": "https://a.example/"},
                "onSuccess": "b",
            },
            {
                "stepDefinitionId": "b",
                **send,
                "options": {
                    "uri": "https://a.example/",
                    "headers": {"Authorization": "{{ secrets.T }}"},
                },
            },
        ]
    ).flow
    assert flow is not None
    assert steps_reading_secrets(flow) == frozenset({"b"})


def test_with_no_key_the_data_folder_gets_one_readable_by_its_owner(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = with_key(settings)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert with_key(settings).secret_key == first.secret_key  # made once, then read
    given = Fernet.generate_key().decode()
    assert with_key(settings.with_(secret_key=given)).secret_key == given


def test_a_new_key_first_still_reads_what_the_old_one_wrote() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox(old).encrypt("v")
    assert SecretBox(f"{new},{old}").decrypt("T", token) == "v"
    with pytest.raises(
        ConfigError, match="T cannot be decrypted with FABFLOW_SECRET_KEY"
    ) as caught:
        SecretBox(new).decrypt("T", token)
    assert token not in caught.value.message


@pytest.mark.parametrize("keys", ["", " , ", "short", "x" * 44])
def test_a_missing_or_malformed_key_is_a_configuration_error(keys: str) -> None:
    with pytest.raises(ConfigError, match="FABFLOW_SECRET_KEY"):
        SecretBox(keys)
