"""The options of a manual-confirmation step, as ``fabflow validate`` reports them."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.flows.options import ManualConfirmationOptions
from fabflow.flows.validate import load_flow


def flow(options: Any) -> list[dict[str, Any]]:
    step = {"stepDefinitionId": "check", "type": "manual-confirmation", "successStatus": "Checked"}
    return [{**step, "options": options}]


@pytest.mark.parametrize(
    ("options", "pointer", "message"),
    [
        ({}, "/0/options", 'missing key "prompt"'),
        ({"prompt": ""}, "/0/options/prompt", "must not be empty"),
        ({"prompt": 5}, "/0/options/prompt", "expected a string, got a number"),
        ({"prompt": "x" * 10_001}, "/0/options/prompt", "at most 10000 characters"),
        (
            {"prompt": "Check it", "assignees": ["ops"]},
            "/0/options/assignees/0",
            '"ops" is not a valid email address',
        ),
        (
            {"prompt": "Check it", "assignees": "ops@example.com"},
            "/0/options/assignees",
            "expected an array, got a string",
        ),
        (
            {"prompt": "Check it", "assignees": ["{{ order.customer.email }}\nBcc: x@y.z"]},
            "/0/options/assignees/0",
            "must not contain line breaks",
        ),
        (
            {"prompt": "Check it", "asignees": []},
            "/0/options/asignees",
            'unknown key "asignees" (did you mean "assignees"?)',
        ),
    ],
)
def test_invalid_options_are_reported_with_a_pointer(
    options: Any, pointer: str, message: str
) -> None:
    result = load_flow(flow(options))
    assert not result.ok
    assert [p.pointer for p in result.errors] == [pointer]
    assert message in result.errors[0].message


@pytest.mark.parametrize(
    ("options", "assignees"),
    [
        ({"prompt": "Is {{ order.id }} fine to print?"}, []),
        ({"prompt": "Check it", "assignees": ["ops@example.com"]}, ["ops@example.com"]),
        (
            {"prompt": "Check it", "assignees": ["{{ order.data.reviewer }}"]},
            ["{{ order.data.reviewer }}"],  # rendered, then checked, when the step runs
        ),
    ],
)
def test_valid_options_load(options: dict[str, Any], assignees: list[str]) -> None:
    result = load_flow(flow(options))
    assert result.ok, result.problems
    assert result.flow is not None
    loaded = result.flow.step("check").options
    assert isinstance(loaded, ManualConfirmationOptions)
    assert loaded.prompt == options["prompt"]
    assert loaded.assignees == assignees
