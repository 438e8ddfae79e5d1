"""Order intake refuses lines the products cannot make, naming line, parameter and why."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.production.line_check import validate_lines


def problems(line: dict[str, Any]) -> dict[str, str]:
    return {p.pointer: p.message for p in validate_lines([{"id": "1", **line}])}


@pytest.mark.parametrize(
    ("line", "pointer", "expected"),
    [
        ({"product": "nameplat"}, "/lines/0/product", 'did you mean "nameplate"?'),
        ({"parameters": {}}, "/lines/0/product", "missing: name the product"),
        ({"product": 7}, "/lines/0/product", "must be a product name"),
        (
            {"product": "nameplate", "parameters": {"text": "Ada", "widht": 80}},
            "/lines/0/parameters/widht",
            'unknown parameter "widht" (did you mean "width"?)',
        ),
        (
            {"product": "nameplate", "parameters": {"text": "Ada", "width": 500}},
            "/lines/0/parameters/width",
            "must be at most 250 (got 500)",
        ),
        (
            {"product": "nameplate", "parameters": {"text": "Ada", "width": "80"}},
            "/lines/0/parameters/width",
            "valid number",
        ),
        ({"product": "nameplate", "parameters": {}}, "/lines/0/parameters/text", "missing"),
        (
            {"product": "nameplate", "parameters": {"text": "Zoë 中文"}},
            "/lines/0/parameters/text",
            "the font cannot draw '中' (U+4E2D), '文' (U+6587)",
        ),
        (
            {"product": "nameplate", "parameters": {"text": "W" * 40, "width": 20}},
            "/lines/0/parameters/text",
            "do not fit on a 20 mm plate",
        ),
        (
            {"product": "ring", "parameters": {"size": 20}},
            "/lines/0/parameters/size",
            "US ring sizes run from 0 to 16",
        ),
        (
            {"product": "ring", "parameters": {"thickness": 1.2, "textDepth": 1}},
            "/lines/0/parameters/textDepth",
            "must leave 0.6 mm of band",
        ),
        (
            {"product": "box", "parameters": {"width": 20, "depth": 20, "wall": 9}},
            "/lines/0/parameters/wall",
            "use at most 8.0 mm",
        ),
        ({"product": "box", "parameters": []}, "/lines/0/parameters", "must be an object"),
    ],
)
def test_problems_point_at_the_parameter_and_say_why(
    line: dict[str, Any], pointer: str, expected: str
) -> None:
    found = problems(line)
    assert pointer in found, found
    assert expected in found[pointer]


def test_valid_lines_have_no_problems() -> None:
    lines: list[dict[str, Any]] = [
        {"id": "1", "product": "nameplate", "quantity": 2, "parameters": {"text": "Ada"}},
        {"id": "2", "product": "ring", "parameters": {"size": 52, "sizeSystem": "eu"}},
        {"id": "3", "product": "box", "parameters": {"lid": True}},
    ]
    assert validate_lines(lines) == []


def test_every_problem_of_every_line_is_reported_at_once() -> None:
    lines: list[dict[str, Any]] = [
        {"id": "1", "product": "nameplate", "parameters": {"text": "中", "height": 1}},
        {"id": "2", "product": "crown"},
    ]
    pointers = {p.pointer for p in validate_lines(lines)}
    expected = {"/lines/0/parameters/text", "/lines/0/parameters/height", "/lines/1/product"}
    assert pointers == expected
