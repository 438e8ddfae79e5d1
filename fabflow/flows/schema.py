"""The JSON Schema of the flow format, generated from the models the validator uses.

The schema of the built-in step types ships in the package as ``flow.schema.json`` so editors can
check flow files; ``fabflow schema`` prints it with the installed plugins' types too. A unit
test keeps the shipped file equal to ``flow_schema(BUILTIN_TYPES)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pydantic import BaseModel

from fabflow.flows.choice import CHOICE, ChoiceOptions
from fabflow.flows.model import steps_adapter
from fabflow.flows.options import (
    ConsumeRestApiOptions,
    GenerateProductionFilesOptions,
    ManualConfirmationOptions,
    SendEmailOptions,
)
from fabflow.flows.registry import step_types

SCHEMA_ID = "https://fabflow.dev/schemas/flow.schema.json"
SCHEMA_FILE = "flow.schema.json"
BUILTIN_TYPES: Mapping[str, type[BaseModel]] = {
    "consume-rest-api": ConsumeRestApiOptions,
    "send-email": SendEmailOptions,
    "generate-production-files": GenerateProductionFilesOptions,
    "manual-confirmation": ManualConfirmationOptions,
    CHOICE: ChoiceOptions,
}


def flow_schema(types: Mapping[str, type[BaseModel]] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow in the spec's array form.

    ``types`` defaults to every registered step type; each step is one ``oneOf`` branch chosen
    by its ``type``.
    """
    generated = steps_adapter(step_types() if types is None else types).json_schema(
        by_alias=True, ref_template="#/$defs/{model}"
    )
    _drop_titles(generated)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "fabflow order flow",
        "description": (
            "A list of step definitions. Execution starts at the first step and follows "
            "onSuccess, or onError when a step fails. Keys and types are checked here; "
            "`fabflow validate` also checks references, loops, email addresses and URLs."
        ),
        **generated,
        "minItems": 1,
    }
    return schema


def _drop_titles(node: Any, in_properties: bool = False) -> None:
    # pydantic titles every field ("Stepdefinitionid"): noise in an editor's hover text.
    if isinstance(node, dict):
        if not in_properties and isinstance(node.get("title"), str):
            del node["title"]
        for key, value in node.items():
            _drop_titles(value, in_properties=key in ("properties", "$defs") and not in_properties)
    elif isinstance(node, list):
        for item in node:
            _drop_titles(item)


def render(schema: dict[str, Any]) -> str:
    """The schema as it is written to ``flow.schema.json`` (stable key order, newline at end)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def shipped_schema() -> str:
    """The text of the schema file shipped in the package."""
    return resources.files("fabflow.flows").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


if __name__ == "__main__":  # python -m fabflow.flows.schema > fabflow/flows/flow.schema.json
    print(render(flow_schema(BUILTIN_TYPES)), end="")
