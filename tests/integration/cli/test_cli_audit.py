"""``fabflow audit``: keys created and revoked from the CLI are on the tenant's trail."""

from __future__ import annotations

import json

import pytest

from fabflow.store.repository import Store
from tests.integration.cli.conftest import fabflow


@pytest.mark.usefixtures("env")
def test_key_creation_and_revocation_are_audited(store: Store) -> None:
    made = fabflow("apikey", "create", "--tenant", "acme", "--label", "erp bridge")
    assert made.exit_code == 0, made.output
    (key,) = store.list_api_keys()
    assert fabflow("apikey", "revoke", key["id"]).exit_code == 0

    shown = fabflow("audit", "--tenant", "acme")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["AT", "WHAT", "SUBJECT", "BY"]
    assert "key_revoked" in lines[1] and key["id"] in lines[1] and lines[1].endswith("cli")
    assert "key_created" in lines[2]

    trail = json.loads(fabflow("audit", "--tenant", "acme", "--json").stdout)
    created = trail["events"][1]
    assert created["data"] == {"keyId": key["id"], "label": "erp bridge", "prefix": key["prefix"]}
    assert made.stdout.strip() not in json.dumps(trail)  # never the secret
