"""The spec's example flows, verbatim, through the CLI and the library."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from fabflow.flows.options import GenerateProductionFilesOptions, SendEmailOptions
from fabflow.flows.validate import load_flow, parse_flow

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
SPEC_FILES = sorted(SPEC_DIR.glob("*.json"))
RunCli = Callable[..., Result]  # the `cli` fixture of conftest.py


def test_every_spec_example_is_present() -> None:
    names = {p.name for p in SPEC_FILES}
    assert names == {
        "full-example.json",
        "generate-production-files.json",
        "consume-rest-api.json",
        "send-email.json",
    }


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_example_validates_with_exit_0(cli: RunCli, path: Path) -> None:
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.stdout
    steps = len(json.loads(path.read_text()))
    noun = "step" if steps == 1 else "steps"
    assert result.stdout.strip() == f"{path}: ok ({steps} {noun})"


def test_all_spec_examples_at_once_give_an_empty_json_list(cli: RunCli) -> None:
    result = cli("validate", "--json", *map(str, SPEC_FILES))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_full_example_loads_into_typed_steps() -> None:
    flow = parse_flow((SPEC_DIR / "full-example.json").read_text(), name="spec")
    assert [s.step_definition_id for s in flow.steps] == ["generate", "consume", "email", "error"]
    assert flow.first.step_definition_id == "generate"
    assert flow.step("email").options == SendEmailOptions(
        recipients=["neil.benin@twikit.com"], subject="Success subject", message="Success message"
    )
    assert flow.step("generate").options == GenerateProductionFilesOptions(file_format="stl")
    assert flow.step("generate").timeout is None and flow.step("generate").retry is None


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_to_json_gives_back_the_spec_document(path: Path) -> None:
    text = path.read_text()
    flow = parse_flow(text)
    assert flow.to_json() == json.loads(text)
    assert parse_flow(flow.to_json()) == flow


def test_object_form_with_name_and_description(full_example: list[dict[str, Any]]) -> None:
    doc = {"name": "Default", "description": "The spec's flow", "steps": full_example}
    flow = parse_flow(json.dumps(doc))
    assert (flow.name, flow.description, len(flow.steps)) == ("Default", "The spec's flow", 4)


def test_object_form_with_a_deadline(full_example: list[dict[str, Any]]) -> None:
    doc = {"name": "Default", "deadline": 172_800_000, "steps": full_example}
    assert parse_flow(json.dumps(doc)).deadline == 172_800_000
    assert parse_flow(full_example).deadline is None  # the list form has none
    assert parse_flow(full_example).to_json() == full_example


@pytest.mark.parametrize(
    ("deadline", "message"),
    [
        (0, "must be greater than 0 (got 0)"),
        ("2d", "expected a number, got a string"),
        (True, "expected a number, got a boolean"),
        (10**12, "must be at most 31536000000 (got 1000000000000)"),
    ],
)
def test_a_wrong_deadline_is_reported_at_its_key(
    full_example: list[dict[str, Any]], deadline: Any, message: str
) -> None:
    result = load_flow({"name": "Default", "deadline": deadline, "steps": full_example})
    assert result.flow is None
    assert [(p.pointer, p.message) for p in result.problems] == [("/deadline", message)]


def test_extensions_load(full_example: list[dict[str, Any]]) -> None:
    full_example[1]["timeout"] = 2500
    full_example[1]["retry"] = {"maxAttempts": 5, "initialDelay": 100, "backoff": 3}
    full_example[1]["options"] |= {"method": "PUT", "headers": {"X-Shop": "1"}}
    full_example[3]["retry"] = 2
    flow = parse_flow(full_example)
    consume = flow.step("consume")
    assert consume.timeout == 2500 and consume.timeout_s == 2.5
    assert consume.retry is not None and consume.retry.max_attempts == 5
    policy = consume.retry.policy()
    assert [policy.delay_before(n) for n in (2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9])
    error_retry = flow.step("error").retry
    assert error_retry is not None and error_retry.max_attempts == 2
    assert load_flow(flow.to_json()).problems == []


def test_retry_delay_is_capped_by_max_delay() -> None:
    flow = parse_flow(
        [
            {
                "stepDefinitionId": "a",
                "type": "generate-production-files",
                "successStatus": "done",
                "options": {},
                "retry": {"maxAttempts": 9, "initialDelay": 1000, "backoff": 10, "maxDelay": 5000},
            }
        ]
    )
    retry = flow.first.retry
    assert retry is not None
    assert [retry.policy().delay_before(n) for n in (2, 3, 4)] == [1.0, 5.0, 5.0]


def test_template_recipient_is_accepted(full_example: list[dict[str, Any]]) -> None:
    full_example[2]["options"]["recipients"] = ["{{ order.customer.email }}"]
    assert load_flow(full_example).problems == []


def test_a_long_initial_delay_without_max_delay_round_trips() -> None:
    """The default cap (60 s) would be below a longer initialDelay: the flow as written back
    (every default spelled out) must load again, as the worker reads it from the store."""
    step = {
        "stepDefinitionId": "a",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": "https://erp.example.com/orders"},
        "retry": {"maxAttempts": 5, "initialDelay": 600_000},
    }
    flow = parse_flow([step])
    again = parse_flow(flow.to_json())
    assert again == flow
    assert again.first.retry is not None and again.first.retry.max_delay == 600_000
