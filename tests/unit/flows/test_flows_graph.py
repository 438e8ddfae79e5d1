"""The graph checks at scale, plugin step types, and the explainer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import Result

from fabflow.flows import registry
from fabflow.flows.explain import explain, flow_graph
from fabflow.flows.graph import error_only
from fabflow.flows.validate import load_flow, parse_flow

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
RunCli = Callable[..., Result]  # the `cli` fixture of conftest.py


def chain(n: int, *, loop: bool = False) -> list[dict[str, Any]]:
    """``n`` generate steps, each leading to the next; the last back to the first if ``loop``."""
    steps: list[dict[str, Any]] = [
        {
            "stepDefinitionId": f"s{i}",
            "type": "generate-production-files",
            "successStatus": "ok",
            "options": {},
            "onSuccess": f"s{i + 1}",
        }
        for i in range(n)
    ]
    if loop:
        steps[-1]["onSuccess"] = "s0"
    else:
        del steps[-1]["onSuccess"]
    return steps


def test_a_5000_step_chain_loads_without_recursion() -> None:
    result = load_flow(chain(5000))
    assert result.problems == [] and result.flow is not None
    assert len(result.flow.steps) == 5000


def test_a_long_loop_is_named_in_short() -> None:
    problems = load_flow(chain(3000, loop=True)).problems
    assert [p.pointer for p in problems] == ["/2999/onSuccess"]
    assert problems[0].message == (
        "cycle: s0 -> s1 -> s2 -> s3 -> s4 -> s5 -> ... 2989 more ... -> s2995 -> s2996 -> s2997"
        " -> s2998 -> s2999 -> s0; an execution could run forever"
    )


def test_many_loops_are_capped() -> None:
    doc = chain(60)
    for i in range(1, 60, 2):
        doc[i]["onError"] = f"s{i - 1}"  # 30 two-step loops
    problems = load_flow(doc).problems
    cycles = [p for p in problems if p.message.startswith("cycle:")]
    assert len(cycles) == 20
    assert problems[-1].pointer == "" and problems[-1].message == "10 more cycles not listed"


def test_step_count_limit_is_a_parameter() -> None:
    assert load_flow(chain(20), max_steps=20).ok
    assert not load_flow(chain(21), max_steps=20).ok


class LabelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    printer: str = Field(min_length=1)
    copies: int = Field(default=1, ge=1)


@pytest.fixture()
def label_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin step type "print-label", registered for one test."""
    monkeypatch.setattr(registry, "_STEP_TYPES", dict(registry._STEP_TYPES))
    registry.register_step_type("print-label", LabelOptions)


def label_step(options: dict[str, Any]) -> list[dict[str, Any]]:
    step = {"stepDefinitionId": "label", "type": "print-label", "successStatus": "Labelled"}
    return [{**step, "options": options}]


@pytest.mark.usefixtures("label_type")
def test_plugin_step_type_validates_through_the_registry() -> None:
    flow = parse_flow(label_step({"printer": "zebra-1", "copies": 2}))
    assert flow.first.options == LabelOptions(printer="zebra-1", copies=2)
    problems = load_flow(label_step({"printr": "x", "copies": 0})).problems
    assert [(p.pointer, p.message) for p in problems] == [
        ("/0/options", 'missing key "printer"'),
        ("/0/options/copies", "must be at least 1 (got 0)"),
        ("/0/options/printr", 'unknown key "printr" (did you mean "printer"?)'),
    ]


def test_plugin_type_is_unknown_when_not_registered() -> None:
    problems = load_flow(label_step({"printer": "zebra-1"})).problems
    assert [p.pointer for p in problems] == ["/0/type"]


def test_explain_the_spec_flow() -> None:
    flow = parse_flow((SPEC_DIR / "full-example.json").read_text(), name="spec")
    assert explain(flow).splitlines() == [
        'Flow "spec": 4 steps, starts at "generate"',
        "",
        "When every step succeeds:",
        "  generate -> consume -> email (end)",
        "",
        "When a step fails (after its retries):",
        "  generate  fails -> error (end)",
        "  consume   fails -> error (end)",
        "  email     fails -> error (end)",
        "  error     fails: the execution ends, failed",
    ]


def test_explain_lists_unreachable_steps_and_graph_flags_them() -> None:
    doc = chain(3)
    doc.append({**chain(1)[0], "stepDefinitionId": "orphan", "onError": "s0"})
    flow = parse_flow(doc)
    assert explain(flow).splitlines()[-2:] == [
        "Never run (no path from the first step):",
        "  orphan",
    ]
    data = flow_graph(flow).as_dict()
    assert [n["id"] for n in data["nodes"] if n["unreachable"]] == ["orphan"]
    assert data["nodes"][0] == {
        "id": "s0", "type": "generate-production-files", "successStatus": "ok",
        "first": True, "unreachable": False,
    }  # fmt: skip
    assert {"from": "orphan", "to": "s0", "kind": "error"} in data["edges"]
    assert {"from": "s0", "to": "s1", "kind": "success"} in data["edges"]


def test_cli_explain(cli: RunCli) -> None:
    path = str(SPEC_DIR / "full-example.json")
    result = cli("validate", "--explain", path)
    assert result.exit_code == 0
    assert "  generate -> consume -> email (end)" in result.stdout.splitlines()
    as_json = cli("validate", "--explain", "--json", path)
    assert as_json.exit_code == 0
    assert '"kind": "error"' in as_json.stdout


def test_error_only_finds_the_steps_only_a_failure_reaches() -> None:
    steps: list[dict[str, object]] = [
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "onError": "sorry",
            "options": {"rules": [{"when": "x", "next": "rush"}], "otherwise": "make"},
        },
        {"stepDefinitionId": "make", "onSuccess": "mail", "onError": "sorry"},
        {"stepDefinitionId": "rush", "onSuccess": "mail", "onError": "apologise"},
        {"stepDefinitionId": "mail", "onError": "make"},  # back to a step succeeding reaches
        {"stepDefinitionId": "sorry", "onSuccess": "tell"},
        {"stepDefinitionId": "apologise", "onSuccess": "mail"},
        {"stepDefinitionId": "tell"},
    ]
    only = {s["stepDefinitionId"] for s in steps if error_only(steps, str(s["stepDefinitionId"]))}
    assert only == {"sorry", "apologise", "tell"}
    assert not error_only(steps, "nope")  # not a step of the flow: nothing to say
