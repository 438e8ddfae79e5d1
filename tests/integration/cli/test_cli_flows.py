"""``fabflow flows``: save a flow file as a version (the same again adds none), list, show and
list versions, with no server; an invalid flow exits 2 with every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabflow.cli.app import EXIT_INVALID_INPUT, EXIT_OK
from tests.integration.cli.conftest import STEP, fabflow


@pytest.mark.usefixtures("env")
def test_put_list_show_and_versions(tmp_path: Path) -> None:
    file = tmp_path / "shop.json"
    file.write_text(json.dumps({"id": "shop", "name": "Shop", "steps": [STEP]}))
    first = fabflow("flows", "put", str(file), "--tenant", "acme")
    assert first.exit_code == EXIT_OK, first.output
    assert "saved as version 1" in first.stdout
    assert "unchanged at version 1" in fabflow("flows", "put", str(file), "--tenant", "acme").stdout
    file.write_text(
        json.dumps({"id": "shop", "name": "Shop", "steps": [{**STEP, "successStatus": "Sent"}]})
    )
    assert "saved as version 2" in fabflow("flows", "put", str(file), "--tenant", "acme").stdout
    listed = json.loads(fabflow("flows", "list", "--tenant", "acme", "--json").stdout)["flows"]
    assert [(f["id"], f["currentVersion"]) for f in listed] == [("shop", 2)]
    shown = json.loads(
        fabflow("flows", "show", "shop", "--tenant", "acme", "--version", "1").stdout
    )
    assert shown["steps"][0]["successStatus"] == "Told"
    versions = json.loads(fabflow("flows", "versions", "shop", "--tenant", "acme", "--json").stdout)
    assert [v["version"] for v in versions["versions"]] == [1, 2]


@pytest.mark.usefixtures("env")
def test_an_invalid_flow_is_not_saved(tmp_path: Path) -> None:
    file = tmp_path / "broken.json"
    file.write_text(json.dumps([{**STEP, "onSuccess": "nowhere"}]))
    refused = fabflow("flows", "put", str(file), "--tenant", "acme")
    assert refused.exit_code == EXIT_INVALID_INPUT
    assert "/0/onSuccess" in refused.output
    assert fabflow("flows", "show", "broken", "--tenant", "acme").exit_code == 1
