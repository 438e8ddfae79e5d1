"""Malformed flows through ``fabflow validate``: exit code, pointer and message of each."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from fabflow.errors import InvalidFlow, Problem
from fabflow.flows.validate import load_flow, parse_flow

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
RunCli = Callable[..., Result]  # the `cli` fixture of conftest.py


SPEC: list[dict[str, Any]] = json.loads((SPEC_DIR / "full-example.json").read_text())
KNOWN = (
    '"choice", "consume-rest-api", "generate-production-files", "manual-confirmation", "send-email"'
)
FORMATS = '"stl", "obj", "3mf", "ply", "glb", "stl-ascii"'
URI_HINT = 'must be an absolute http or https URL such as "https://example.com/orders"; got '


def spec(change: Callable[[list[dict[str, Any]]], object]) -> list[dict[str, Any]]:
    """The spec's full example with ``change`` applied to a copy."""
    doc = copy.deepcopy(SPEC)
    change(doc)
    return doc


def setter(index: int, *path_and_value: Any) -> Callable[[list[dict[str, Any]]], None]:
    """Set ``doc[index][k1][k2]... = value``."""
    *keys, value = path_and_value

    def change(doc: list[dict[str, Any]]) -> None:
        target: Any = doc[index]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def deleter(index: int, *keys: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(doc: list[dict[str, Any]]) -> None:
        target: Any = doc[index]
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def rename(index: int, old: str, new: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(doc: list[dict[str, Any]]) -> None:
        doc[index][new] = doc[index].pop(old)

    return change


# (case id, document or raw JSON text, expected pointer, expected message)
CASES: list[tuple[str, Any, str, str]] = [
    (
        "trailing-comma",
        '[{"stepDefinitionId": "a",}]',
        "",
        "malformed JSON at line 1, column 27: Expecting property name enclosed in double quotes",
    ),
    (
        "truncated",
        '[\n  {"stepDefinitionId": "a"',
        "",
        "malformed JSON at line 2, column 27: Expecting ',' delimiter",
    ),
    ("nan", '[{"timeout": NaN}]', "", "malformed JSON: NaN is not valid JSON"),
    (
        "not-a-list",
        '"hello"',
        "",
        'a flow is a JSON array of step definitions, or an object with "name" and "steps";'
        " got a string",
    ),
    ("empty-list", [], "", "the flow has no steps: add at least one step definition"),
    (
        "object-empty-steps",
        {"name": "x", "steps": []},
        "/steps",
        "the flow has no steps: add at least one step definition",
    ),
    ("object-missing-name", {"steps": SPEC}, "", 'missing key "name"'),
    (
        "object-unknown-key",
        {"name": "x", "steps": SPEC, "stepz": []},
        "/stepz",
        'unknown key "stepz" (did you mean "steps"?)',
    ),
    (
        "object-step-pointer",
        {"name": "x", "steps": spec(deleter(3, "options"))},
        "/steps/3",
        'missing key "options"',
    ),
    ("step-not-object", [42], "/0", "expected an object (a step definition), got a number"),
    ("missing-id", spec(deleter(0, "stepDefinitionId")), "/0", 'missing key "stepDefinitionId"'),
    ("missing-options", spec(deleter(1, "options")), "/1", 'missing key "options"'),
    ("missing-status", spec(deleter(2, "successStatus")), "/2", 'missing key "successStatus"'),
    (
        "unknown-key-typo",
        spec(rename(0, "onSuccess", "onSucess")),
        "/0/onSucess",
        'unknown key "onSucess" (did you mean "onSuccess"?)',
    ),
    (
        "unknown-key-escaped",
        spec(setter(0, "a/b~c", 1)),
        "/0/a~1b~0c",
        'unknown key "a/b~c"',
    ),
    (
        "id-number",
        spec(setter(3, "stepDefinitionId", 5)),
        "/3/stepDefinitionId",
        "expected a string, got a number",
    ),
    (
        "id-too-long",
        spec(setter(3, "stepDefinitionId", "x" * 201)),
        "/3/stepDefinitionId",
        "must be at most 200 characters (got 201)",
    ),
    ("status-empty", spec(setter(0, "successStatus", "")), "/0/successStatus", "must not be empty"),
    (
        "unknown-type",
        spec(setter(2, "type", "send-emial")),
        "/2/type",
        f'unknown step type "send-emial" (did you mean "send-email"?); known types: {KNOWN}',
    ),
    ("type-null", spec(setter(2, "type", None)), "/2/type", "expected a string, got null"),
    (
        "duplicate-id",
        spec(setter(1, "stepDefinitionId", "generate")),
        "/1/stepDefinitionId",
        'duplicate stepDefinitionId "generate" (first used by /0)',
    ),
    (
        "dangling-on-error",
        spec(setter(2, "onError", "eror")),
        "/2/onError",
        'no step has stepDefinitionId "eror" (did you mean "error"?)',
    ),
    (
        "dangling-no-suggestion",
        spec(setter(0, "onSuccess", "zzzzzz")),
        "/0/onSuccess",
        'no step has stepDefinitionId "zzzzzz"',
    ),
    (
        "self-pointing",
        spec(setter(3, "onError", "error")),
        "/3/onError",
        'step "error" points at itself; a step cannot follow itself',
    ),
    (
        "cycle",
        spec(setter(2, "onSuccess", "generate")),
        "/2/onSuccess",
        "cycle: generate -> consume -> email -> generate; an execution could run forever",
    ),
    (
        "cycle-through-error-path",
        spec(setter(3, "onSuccess", "consume")),
        "/3/onSuccess",
        "cycle: consume -> email -> error -> consume; an execution could run forever",
    ),
    (
        "on-error-number",
        spec(setter(0, "onError", 3)),
        "/0/onError",
        "expected a string, got a number",
    ),
    ("timeout-zero", spec(setter(1, "timeout", 0)), "/1/timeout", "must be greater than 0 (got 0)"),
    (
        "timeout-negative",
        spec(setter(1, "timeout", -5.5)),
        "/1/timeout",
        "must be greater than 0 (got -5.5)",
    ),
    (
        "timeout-string",
        spec(setter(1, "timeout", "5000")),
        "/1/timeout",
        "expected a number, got a string",
    ),
    (
        "timeout-bool",
        spec(setter(1, "timeout", True)),
        "/1/timeout",
        "expected a number, got a boolean",
    ),
    (
        "uri-relative",
        spec(setter(1, "options", "uri", "/orders")),
        "/1/options/uri",
        URI_HINT + '"/orders"',
    ),
    (
        "uri-ftp",
        spec(setter(1, "options", "uri", "ftp://example.com/x")),
        "/1/options/uri",
        URI_HINT + '"ftp://example.com/x"',
    ),
    (
        "uri-no-host",
        spec(setter(1, "options", "uri", "https://")),
        "/1/options/uri",
        URI_HINT + '"https://"',
    ),
    (
        "uri-space",
        spec(setter(1, "options", "uri", "https://example.com/a b")),
        "/1/options/uri",
        URI_HINT + '"https://example.com/a b" (spaces are not allowed)',
    ),
    (
        "uri-number",
        spec(setter(1, "options", "uri", 80)),
        "/1/options/uri",
        "expected a string, got a number",
    ),
    ("missing-uri", spec(setter(1, "options", {})), "/1/options", 'missing key "uri"'),
    (
        "recipients-empty",
        spec(setter(2, "options", "recipients", [])),
        "/2/options/recipients",
        "must not be empty",
    ),
    (
        "recipient-invalid",
        spec(setter(2, "options", "recipients", ["ops@example.com", "neil"])),
        "/2/options/recipients/1",
        '"neil" is not a valid email address: An email address must have an @-sign.',
    ),
    (
        "recipients-string",
        spec(setter(2, "options", "recipients", "neil.benin@twikit.com")),
        "/2/options/recipients",
        "expected an array, got a string",
    ),
    (
        "missing-subject",
        spec(deleter(2, "options", "subject")),
        "/2/options",
        'missing key "subject"',
    ),
    (
        "options-unknown-key",
        spec(setter(2, "options", "subjct", "x")),
        "/2/options/subjct",
        'unknown key "subjct" (did you mean "subject"?)',
    ),
    (
        "file-format-case",
        spec(setter(0, "options", "fileFormat", "STL")),
        "/0/options/fileFormat",
        f'must be one of {FORMATS}; got "STL" (did you mean "stl"?)',
    ),
    (
        "file-format-unknown",
        spec(setter(0, "options", "fileFormat", "step")),
        "/0/options/fileFormat",
        f'must be one of {FORMATS}; got "step"',
    ),
    (
        "options-array",
        spec(setter(0, "options", [])),
        "/0/options",
        "expected an object, got an array",
    ),
    (
        "retry-zero",
        spec(setter(1, "retry", {"maxAttempts": 0})),
        "/1/retry/maxAttempts",
        "must be at least 1 (got 0)",
    ),
    (
        "retry-backoff",
        spec(setter(1, "retry", {"maxAttempts": 3, "backoff": 0.5})),
        "/1/retry/backoff",
        "must be at least 1 (got 0.5)",
    ),
    (
        "retry-key-typo",
        spec(setter(1, "retry", {"attempts": 3})),
        "/1/retry/attempts",
        'unknown key "attempts" (did you mean "maxAttempts"?)',
    ),
    (
        "retry-max-below-initial",
        spec(setter(1, "retry", {"maxAttempts": 3, "initialDelay": 5000, "maxDelay": 100})),
        "/1/retry/maxDelay",
        "must be at least initialDelay (5000 ms)",
    ),
    (
        "retry-string",
        spec(setter(1, "retry", "often")),
        "/1/retry",
        "expected an object, got a string",
    ),
]


@pytest.mark.parametrize(
    ("doc", "pointer", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_flow_is_reported(
    cli: RunCli, write_flow: Callable[..., str], doc: Any, pointer: str, message: str
) -> None:
    path = write_flow(doc)
    result = cli("validate", "--json", path)
    assert result.exit_code == 1, result.stdout
    problems = json.loads(result.stdout)
    assert {
        "file": path,
        "pointer": pointer,
        "message": message,
        "severity": "error",
    } in problems, problems


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def test_text_output_is_one_line_per_problem(cli: RunCli, write_flow: Callable[..., str]) -> None:
    doc = spec(setter(2, "onError", "eror"))
    doc[0]["timeout"] = 0
    path = write_flow(doc)
    result = cli("validate", path)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}: /0/timeout: must be greater than 0 (got 0)",
        f'{path}: /2/onError: no step has stepDefinitionId "eror" (did you mean "error"?)',
        f"{path}: invalid (2 errors)",
    ]


def test_malformed_json_line_has_no_pointer(cli: RunCli, write_flow: Callable[..., str]) -> None:
    path = write_flow("[1,")
    result = cli("validate", path)
    assert result.exit_code == 1
    assert (
        result.stdout.splitlines()[0]
        == f"{path}: malformed JSON at line 1, column 4: Expecting value"
    )


def test_every_problem_is_reported_at_once() -> None:
    doc = spec(setter(2, "onError", "eror"))
    doc[0]["options"]["fileFormat"] = "gif"
    doc[1]["options"]["uri"] = "nope"
    doc[3]["type"] = "sms"
    del doc[2]["successStatus"]
    pointers = [p.pointer for p in load_flow(doc).problems]
    assert pointers == ["/0/options/fileFormat", "/1/options/uri", "/2", "/3/type", "/2/onError"]


def test_unreachable_step_is_a_warning_and_exit_0(
    cli: RunCli, write_flow: Callable[..., str]
) -> None:
    doc = spec(deleter(1, "onSuccess"))  # consume no longer leads to email
    doc[0]["onError"] = doc[1]["onError"] = None
    path = write_flow(doc)
    result = cli("validate", path)
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines == [
        f'{path}: /2: warning: step "email" is never run: no onSuccess/onError path from the first '
        'step "generate" leads to it',
        f'{path}: /3: warning: step "error" is never run: no onSuccess/onError path from the first '
        'step "generate" leads to it',
        f"{path}: ok (4 steps, 2 warnings)",
    ]


def test_missing_file_is_a_problem_with_exit_1(cli: RunCli, tmp_path: Any) -> None:
    missing = str(tmp_path / "nope.json")
    result = cli("validate", "--json", missing)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"file": missing, "pointer": "", "message": "file not found", "severity": "error"}
    ]


def test_one_invalid_file_among_valid_ones_fails(
    cli: RunCli, write_flow: Callable[..., str]
) -> None:
    good = write_flow(SPEC, "good.json")
    bad = write_flow([], "bad.json")
    result = cli("validate", good, bad)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{good}: ok (4 steps)"


def test_stdin_is_read_for_dash(cli: RunCli) -> None:
    result = cli("validate", "-", stdin=json.dumps(SPEC))
    assert result.exit_code == 0
    assert result.stdout.strip() == "-: ok (4 steps)"


def test_too_many_steps_are_refused_before_anything_else() -> None:
    doc = [{"junk": i} for i in range(11)]
    assert load_flow(doc, max_steps=10).problems == [Problem("", "too many steps: 11 (at most 10)")]


def test_parse_flow_raises_invalid_flow_with_every_problem() -> None:
    doc = spec(setter(2, "onError", "eror"))
    doc[0]["timeout"] = -1
    with pytest.raises(InvalidFlow) as caught:
        parse_flow(doc)
    assert (
        str(caught.value)
        == "invalid flow: /0/timeout: must be greater than 0 (got -1) (and 1 more)"
    )
    assert [p.pointer for p in caught.value.problems] == ["/0/timeout", "/2/onError"]
    assert caught.value.code == "invalid_flow"


def test_wait_for_callback_validates_and_must_be_a_boolean(
    cli: RunCli, write_flow: Callable[..., str]
) -> None:
    step = {
        "stepDefinitionId": "erp",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": "https://erp.example.com/orders", "waitForCallback": True},
    }
    assert cli("validate", "--json", write_flow([step])).exit_code == 0
    step["options"]["waitForCallback"] = "yes"
    result = cli("validate", "--json", write_flow([step]))
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)
    assert problem["pointer"] == "/0/options/waitForCallback"


@pytest.mark.parametrize("as_text", [True, False], ids=["json text", "decoded"])
def test_nul_characters_are_refused_where_they_are(as_text: bool) -> None:
    """PostgreSQL cannot store NUL: a flow holding one is refused on every store alike."""
    doc = spec(setter(0, "successStatus", "Files\x00ready"))
    doc[1]["options"]["headers"] = {"X-\x00": "a"}
    result = load_flow(json.dumps(doc) if as_text else doc)
    assert result.flow is None
    found = {p.pointer: p.message for p in result.problems if "NUL" in p.message}
    assert found == {
        "/0/successStatus": "the text contains a NUL character (\\u0000)",
        "/1/options/headers/X-\x00": "the key contains a NUL character (\\u0000)",
    }
    assert load_flow(json.dumps(SPEC)).flow is not None  # and none without it
