"""The JSON Schema: shipped, current, and agreeing with the validator on the spec examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

import fabflow.flows
from fabflow.flows.schema import BUILTIN_TYPES, SCHEMA_FILE, flow_schema, render, shipped_schema

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
SPEC_FILES = sorted(SPEC_DIR.glob("*.json"))
RunCli = Callable[..., Result]  # the `cli` fixture of conftest.py


def test_shipped_schema_matches_the_models() -> None:
    # Regenerate with: python -m fabflow.flows.schema > fabflow/flows/flow.schema.json
    assert shipped_schema() == render(flow_schema(BUILTIN_TYPES))


def test_schema_file_is_in_the_package_folder() -> None:
    package_dir = Path(fabflow.flows.__file__).parent
    assert (package_dir / SCHEMA_FILE).read_text(encoding="utf-8") == shipped_schema()


def test_schema_command_prints_the_schema(cli: RunCli) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "array"
    mapping = schema["items"]["discriminator"]["mapping"]
    assert set(BUILTIN_TYPES) <= set(mapping)


def test_step_branches_list_the_spec_keys() -> None:
    defs = flow_schema(BUILTIN_TYPES)["$defs"]
    step = defs["SendEmailStep"]
    assert step["required"] == ["stepDefinitionId", "type", "successStatus", "options"]
    assert step["additionalProperties"] is False
    assert set(step["properties"]) == {
        "stepDefinitionId", "type", "successStatus", "options",
        "timeout", "onSuccess", "onError", "retry",
    }  # fmt: skip
    assert defs["GenerateProductionFilesOptions"]["properties"]["fileFormat"]["enum"][:2] == [
        "stl",
        "obj",
    ]


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_examples_are_valid_against_the_schema(path: Path) -> None:
    # jsonschema_rs comes with schemathesis (a dev dependency).
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    jsonschema_rs.Draft202012Validator(json.loads(shipped_schema())).validate(
        json.loads(path.read_text())
    )


def test_schema_refuses_an_unknown_key() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.Draft202012Validator(json.loads(shipped_schema()))
    doc = json.loads(SPEC_FILES[0].read_text())
    doc[0]["onSucess"] = "x"
    assert not validator.is_valid(doc)
    doc[0].pop("onSucess")
    doc[0]["retry"] = 3  # the shorthand is part of the schema
    assert validator.is_valid(doc)
