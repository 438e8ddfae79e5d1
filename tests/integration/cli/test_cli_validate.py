"""``fabflow validate`` on flow files with choices and templates: ``--explain`` lists each branch
with its condition, and a template's typo is refused before anything runs, located by its JSON
Pointer with a "did you mean"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabflow.cli.app import EXIT_FAILED, EXIT_OK
from tests.integration.cli.conftest import fabflow

BE_NL = 'order.data.country in ["BE", "NL"]'
US = 'order.data.country == "US"'


def email(sid: str, subject: str) -> dict[str, Any]:
    options = {"recipients": ["shop@example.com"], "subject": subject, "message": "See the order."}
    return {"stepDefinitionId": sid, "type": "send-email", "successStatus": sid, "options": options}


def mes(sid: str, uri: str, **kw: Any) -> dict[str, Any]:
    return {
        "stepDefinitionId": sid,
        "type": "consume-rest-api",
        "successStatus": f"At {sid}",
        "options": {"uri": uri},
        **kw,
    }


def routed(subject: str) -> list[dict[str, Any]]:
    """EU and US orders to their workshop's MES, the rest to the shop; the EU MES's job id is
    mailed to the shop."""
    return [
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "options": {
                "rules": [{"when": BE_NL, "next": "eu-mes"}, {"when": US, "next": "us-mes"}],
                "otherwise": "ask-shop",
            },
        },
        mes("eu-mes", "https://mes.eu.example.com/jobs", onSuccess="tell-shop"),
        email("tell-shop", subject),
        mes("us-mes", "https://mes.us.example.com/jobs"),
        email("ask-shop", "Where does order {{ order.id }} go?"),
    ]


def write(tmp_path: Path, name: str, steps: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(steps, indent=2))
    return str(path)


def test_explain_lists_each_branch_with_its_condition_and_the_otherwise(tmp_path: Path) -> None:
    path = write(tmp_path, "routed.json", routed("Job {{ steps['eu-mes'].response.body.jobId }}"))

    done = fabflow("validate", "--explain", path)
    assert done.exit_code == EXIT_OK, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"{path}: ok (5 steps)"
    assert "  route (choice: see below)" in lines  # the success path stops at the choice
    start = lines.index("Choices (rules tried in order, the first true one wins):")
    assert lines[start + 1 : start + 5] == [
        "  route:",
        f"    when {BE_NL} -> eu-mes -> tell-shop (end)",
        f"    when {US} -> us-mes (end)",
        "    otherwise -> ask-shop (end)",
    ]
    assert "  route      an expression fails: the execution ends, failed" in lines

    as_json = fabflow("validate", "--explain", "--json", path)
    assert as_json.exit_code == EXIT_OK, as_json.output
    answer = json.loads(as_json.stdout)
    assert answer["problems"] == []
    branches = [e for e in answer["graphs"][path]["edges"] if e["kind"] == "choice"]
    assert branches == [
        {"from": "route", "to": "eu-mes", "kind": "choice", "label": BE_NL},
        {"from": "route", "to": "us-mes", "kind": "choice", "label": US},
        {"from": "route", "to": "ask-shop", "kind": "choice", "label": "otherwise"},
    ]


def test_a_template_typo_is_refused_with_its_pointer_and_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.json", routed("Order for {{ order.custmer.name }}"))

    done = fabflow("validate", path)
    assert done.exit_code == EXIT_FAILED == 1  # docs/cli.md: 1 when a flow is invalid
    assert done.stdout.splitlines() == [
        f"{path}: /2/options/subject: template reads order.custmer.name: "
        'order has no "custmer" (did you mean "customer"?)',
        f"{path}: invalid (1 error)",
    ]

    explained = fabflow("validate", "--explain", path)  # an invalid flow is not explained
    assert explained.exit_code == EXIT_FAILED
    assert "Choices" not in explained.stdout

    as_json = fabflow("validate", "--json", path)
    assert as_json.exit_code == EXIT_FAILED
    [problem] = json.loads(as_json.stdout)
    assert problem["file"] == path and problem["severity"] == "error"
    assert problem["pointer"] == "/2/options/subject"
    assert 'did you mean "customer"?' in problem["message"]
