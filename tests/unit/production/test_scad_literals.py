"""Python values as OpenSCAD literals for ``openscad -D``."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.errors import ParameterError
from fabflow.production.scad.literals import define_arguments, scad_literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (3, "3"),
        (-12, "-12"),
        (10**20, "100000000000000000000"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (2.5e-300, "2.5e-300"),
        (1 / 3, "0.3333333333333333"),
        (-0.0, "-0.0"),
        (True, "true"),
        (False, "false"),
        (None, "undef"),
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines\r\tend", '"two\\nlines\\r\\tend"'),
        ("bell\x07 del\x7f", '"bell\\x07 del\\x7f"'),
        ("Zoë ✓", '"Zoë ✓"'),
        ([1, 2.5, "a"], '[1, 2.5, "a"]'),
        ((0, [True, None]), "[0, [true, undef]]"),
        ([], "[]"),
    ],
)
def test_literal(value: Any, literal: str) -> None:
    assert scad_literal(value) == literal


def test_float_literal_reads_back_as_the_same_number() -> None:
    for value in (0.1, 1 / 3, 123.456789012345, 2.5e-300, 1.7976931348623157e308):
        assert float(scad_literal(value)) == value


@pytest.mark.parametrize(
    "text",
    ['"; cube(1000); x = "', '\\"; cube(1000); //', 'a\\\n"; cube(1)', '\\\\"'],
)
def test_a_string_cannot_end_its_literal_early(text: str) -> None:
    literal = scad_literal(text)
    body = literal[1:-1]
    # every quote inside is escaped: preceded by an odd number of backslashes
    for index, char in enumerate(body):
        if char == '"':
            run = len(body[:index]) - len(body[:index].rstrip("\\"))
            assert run % 2 == 1, literal
    assert "\n" not in literal


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("nul\x00", "NUL"),
        ({"a": 1}, "no OpenSCAD literal"),
        ([1, float("-inf")], "finite"),
    ],
)
def test_values_without_a_literal_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        scad_literal(value, "p")


def test_define_arguments_pairs_each_name() -> None:
    assert define_arguments({"size": 4, "label": "A"}) == ["-D", "size=4", "-D", 'label="A"']


@pytest.mark.parametrize("name", ["", "1x", "a b", "x;cube(1)", "a=b", "ä"])
def test_define_arguments_refuses_names_that_are_not_variables(name: str) -> None:
    with pytest.raises(ParameterError) as caught:
        define_arguments({name: 1})
    assert caught.value.parameter == name


def test_special_variables_may_be_set() -> None:
    assert define_arguments({"$fn": 64}) == ["-D", "$fn=64"]
