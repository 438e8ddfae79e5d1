"""A model's Customizer annotations become parameters, a JSON Schema and strict value checks.

The forms are OpenSCAD's (2021.01); ``test_annotations_match_openscad`` reads the same model
with the ``openscad`` program (its ``.ast`` export prints each parameter's annotation) and
checks that both read every variable alike.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fabflow.errors import InvalidProduct
from fabflow.production.scad.annotations import CommentIndex, Labelled, parse_annotation
from fabflow.production.scad.customizer import Customizer, ScadParameter, parse_customizer
from fabflow.production.scad.lexer import tokenize
from fabflow.production.scad.toplevel import (
    NOT_LITERAL,
    ScadRange,
    first_brace_line,
    literal_value,
    top_level_assignments,
)

NAMEPLATE = """\
// A nameplate: a name in raised letters on a plate.

/* [Text] */
// The name on the plate
name = "Ada"; // 12
// Letter height in mm
letter_size = 10; // [4:0.5:14]
font = "Liberation Sans"; // [Liberation Sans, Liberation Serif:Serif]

/* [Plate] */
// Rounded or square corners
shape = "round"; // [round:Rounded, square:Square]
// Plate thickness in mm
thickness = 2; // [1:5]
// Plate size in mm
size = [60, 20]; // [10:100]
border = true;
holes = 2; // [0, 2, 4]

/* [Hidden] */
$fn = 48;
margin = 4;

module plate() {
  linear_extrude(thickness) offset(r = shape == "round" ? 3 : 0) offset(delta = -3)
    square(size, center = true);
  translate([0, 0, thickness])
    linear_extrude(1)
      text(name, size = letter_size, font = font, halign = "center", valign = "center");
}
plate();
"""

RING = """\
// A ring with an engraving inside, sized by US ring size.

/* [Size] */
// US ring size
ring_size = 7; // [5:US 5, 6:US 6, 7:US 7, 8:US 8, 9:US 9]
// Band width in mm
band_width = 4; // [2:0.5:8]
// Band thickness in mm
thickness = 1.6; // [1.2:0.1:3]

/* [Engraving] */
// Text inside the band
engraving = "Forever"; // 16
profile = "comfort"; // [flat:Flat, comfort:Comfort fit]

/* [Hidden] */
$fn = 96;
diameters = [15.7, 16.5, 17.3, 18.2, 19.0];

module band() {
  inner = diameters[ring_size - 5];
  difference() {
    cylinder(d = inner + 2 * thickness, h = band_width);
    translate([0, 0, -1]) cylinder(d = inner, h = band_width + 2);
  }
}
band();
"""


def only(source: str) -> ScadParameter:
    """The one parameter of ``source``."""
    parameters = parse_customizer(source).parameters
    assert len(parameters) == 1, parameters
    return parameters[0]


def names(source: str) -> list[str]:
    return [p.name for p in parse_customizer(source).parameters]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # spin boxes: whole when the default (or the step) has no decimals
        ("x = 5;", {"default": 5, "integer": True, "widget": "spinbox", "minimum": None}),
        ("x = 5.5;", {"default": 5.5, "integer": False, "step": None}),
        ("x = 5; // 0.5", {"default": 5.0, "integer": False, "step": 0.5}),
        ("x = 4; // 2", {"default": 4, "integer": True, "step": 2}),
        ("x = -1.5;", {"default": -1.5, "integer": False}),
        ("x = 5; // -1", {"step": None, "integer": True}),
        # sliders
        ("x = 5; // [10]", {"minimum": 0, "maximum": 10, "step": 1, "integer": True}),
        ("x = 5; // [0:10]", {"minimum": 0, "maximum": 10, "step": 1, "widget": "slider"}),
        ("x = 10; // [4:0.5:14]", {"minimum": 4.0, "maximum": 14.0, "step": 0.5, "integer": False}),
        ("x = 0.3; // [0:0.3:1]", {"maximum": 0.9, "step": 0.3}),  # cut to the last full step
        ("x = 4; // [0:2:9]", {"maximum": 8, "integer": True}),
        ("x = -5; // [-10 : 10]", {"default": -5, "minimum": -10, "maximum": 10}),
        ("x = 1.5; // [0.5:1:9.5]", {"integer": False, "minimum": 0.5}),
        ("x = 1e3; // [0:100:2e3]", {"default": 1000, "maximum": 2000, "integer": True}),
        ("x = 1.5E-1; // [0:.05:1]", {"default": 0.15, "step": 0.05, "integer": False}),
        ("x = 5;// [0:10]", {"widget": "slider"}),
        ("x = (5); // [0:10]", {"default": 5, "widget": "slider"}),
        ("x = +5;", {"default": 5}),
        ("x = -(-5);", {"default": 5}),
        # number dropdowns
        ("x = 2; // [0, 1, 2, 3]", {"options": ((0, "0"), (1, "1"), (2, "2"), (3, "3"))}),
        ("x = 10; // [10:Small, 20:Large]", {"options": ((10, "Small"), (20, "Large"))}),
        ("x = 1.5; // [0.5, 1.5]", {"options": ((0.5, "0.5"), (1.5, "1.5")), "integer": False}),
        ("x = 1; // [1:One (I), 2:Two (II)]", {"options": ((1, "One I"), (2, "Two II"))}),
        ("x = 7; // [5:US 5, 7:US 7]", {"options": ((5, "US 5"), (7, "US 7"))}),
        ("x = 1; // [1, 1, 2]", {"options": ((1, "1"), (2, "2"))}),
        ("x = 10; // [10:Small]", {"options": ((10, "Small"),), "widget": "dropdown"}),
        # string dropdowns
        (
            's = "foo"; // [foo, bar, baz]',
            {"options": (("foo", "foo"), ("bar", "bar"), ("baz", "baz"))},
        ),
        (
            's = "S"; // [S:Small, M:Medium size]',
            {"options": (("S", "Small"), ("M", "Medium size"))},
        ),
        ('s = "10"; // [10, 20, 1e6]', {"options": (("10", "10"), ("20", "20"), ("1e+6", "1e+6"))}),
        (
            's = "a b"; // ["a b":Two words, "c:d":Colon]',
            {"options": (("a b", "Two words"), ("c:d", "Colon"))},
        ),
        # strings
        ('s = "Ada"; // 12', {"kind": "string", "max_length": 12, "widget": "text"}),
        ('s = "Ada"; // [12]', {"max_length": 12}),
        ('s = "Ada"; // 12.7', {"max_length": 12}),
        ('s = "Ada";', {"max_length": None, "default": "Ada"}),
        ('s = "Ada"; // some words', {"max_length": None, "options": ()}),
        ('s = "a\\"b\\\\c\\x41\\u00e9";', {"default": 'a"b\\cAé'}),
        ('s = "http://example.com"; // 40', {"default": "http://example.com", "max_length": 40}),
        # booleans: the annotation does not matter
        ("b = true;", {"kind": "boolean", "default": True, "widget": "checkbox"}),
        ("b = false; // [0:1]", {"kind": "boolean", "default": False}),
        ("b = !0;", {"kind": "boolean", "default": True}),
        # vectors of 1 to 4 numbers, a range applying to each
        ("v = [1, 2, 3];", {"kind": "vector", "default": [1, 2, 3], "integer": True}),
        ("v = [1.5, 2]; // [0:0.5:10]", {"default": [1.5, 2.0], "maximum": 10.0, "step": 0.5}),
        ("v = [10, 20, 30, 40]; // [0:100]", {"minimum": 0, "maximum": 100, "integer": True}),
        ("v = [-1, 2.5,];", {"default": [-1.0, 2.5], "integer": False}),
        ("v = [1, 2]; // [5, 6]", {"minimum": None, "maximum": None}),
        # what OpenSCAD cannot read as an annotation reads as none
        ("x = 5; // [0:10] mm", {"widget": "spinbox", "minimum": None}),
        ("x = 5; // [0:10", {"widget": "spinbox"}),
        ("x = 5; // [1 2]", {"widget": "spinbox"}),
        ("x = 5; // [1:2:3, 4]", {"widget": "spinbox"}),
        ("x = 5; // [a:b:c]", {"widget": "spinbox"}),
        ("x = 5; // []", {"widget": "spinbox"}),
        ("x = 5; // some words", {"widget": "spinbox", "step": None}),
        ('s = "x"; // [x, "y', {"options": ()}),
    ],
)
def test_each_form_reads_as_openscad_offers_it(source: str, expected: dict[str, Any]) -> None:
    parameter = only(source)
    found = {key: getattr(parameter, key) for key in expected}
    assert found == expected
    for key in ("default", "minimum", "maximum", "step"):
        if key in expected and expected[key] is not None:
            assert type(found[key]) is type(expected[key]), key  # 5 stays an int, 5.0 a float


@pytest.mark.parametrize(
    "source",
    [
        "x = 2 * 3;",
        "x = y;",
        "x = sin(30);",
        "x = undef;",
        "x = [0:10];",
        "x = [1, 2, 3, 4, 5];",
        'x = ["a", "b"];',
        "x = [];",
        "x = [[1, 2]];",
        "x = [1, true];",
        "x = [for (i = [0:3]) i];",
        "x = true ? 1 : 2;",
        "x = -true;",
        "module m() { }\nx = 5;",
        "x = 5; module m() { }",
        "x = 1;\nx = y;",
        "x = 1;\nif (x > 0) { cube(1); }\nx = 2;",
        "/* [Hidden] */\nx = 5;",
        "{ x = 5; }",
        "translate([0, 0, 1]) cube(size = 5);",
    ],
)
def test_what_is_not_a_parameter(source: str) -> None:
    assert parse_customizer(source).parameters == ()


def test_functions_without_braces_do_not_end_the_parameters() -> None:
    source = "function double(x) = 2 * x;\nmodule m() cube(1);\ny = 2; // [0:5]\nm();\n"
    assert names(source) == ["y"]


def test_a_later_assignment_sets_default_annotation_and_line_but_not_the_order() -> None:
    source = "x = 1; // [0:10]\ny = 2;\nx = 3; // [0:5]\n"
    x, y = parse_customizer(source).parameters
    assert (x.name, x.default, x.maximum, x.line) == ("x", 3, 5, 3)
    assert y.name == "y"


def test_two_statements_on_a_line_have_no_annotation() -> None:
    a, b = parse_customizer("a = 5; b = 6; // [0:10]\n").parameters
    assert a.widget == b.widget == "spinbox"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("// Height in mm\nx = 5;", "Height in mm"),
        ("//Height in mm\nx = 5;", "Height in mm"),
        ("//   \tHeight\nx = 5;", "Height"),
        ("  // indented: OpenSCAD does not read it\nx = 5;", ""),
        ("// first\n// second\nx = 5;", "second"),
        ("// a // b\nx = 5;", "a   b"),
        ("// above a blank line\n\nx = 5;", ""),
        ("/* a block comment */\nx = 5;", ""),
        ("x = 5; // [0:10]", ""),
        ("// Ünïcode ✓\nx = 5;", "Ünïcode ✓"),
    ],
)
def test_the_description_is_the_comment_line_above(source: str, expected: str) -> None:
    assert only(source).description == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1;", ""),
        ("/* [Size] */\nx = 1;", "Size"),
        ("/* [Global] */\nx = 1;", "Global"),
        ("/*[ Global ]*/\nx = 1;", " Global "),  # as OpenSCAD reads it (not its global tab)
        ("/* [a] [b] */\nx = 1;", "a-b"),
        ("/* [Size] */\n/* a note */\nx = 1;", ""),  # any one-line block comment starts a tab
        ("/* [Size] */\n/*\n[Not a tab]\n*/\nx = 1;", "Size"),
        ("/* [Size] */\n/* [Same line] */ x = 1;", "Size"),
        ("/* [Hidden] */\ny = 1;\n/* [Shown] */\nx = 1;", "Shown"),
        ('/* [Size] */\ns = "/* [Not a tab] */";\nx = 1; // 2', "Size"),
        ("/* [Size] */\n// /* [Not a tab] */\nx = 1;", "Size"),
    ],
)
def test_the_tab_is_the_last_tab_comment_above(source: str, expected: str) -> None:
    assert parse_customizer(source).parameters[-1].tab == expected


def test_hidden_lasts_until_the_next_tab() -> None:
    source = (
        "a = 1;\n/* [Hidden] */\nb = 2;\nc = 3;\n/* [More] */\nd = 4;\n/* [Hidden] */\ne = 5;\n"
    )
    assert names(source) == ["a", "d"]


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("x = 15; // [4:0.5:14]", 1, "the default 15 is outside the slider [4:0.5:14]"),
        ("x = 4.2; // [4:0.5:14]", 1, "is not on the slider [4:0.5:14], which moves in steps"),
        ("\nx = 2.5; // [0:10]", 2, "in steps of 1 from 0"),
        ("x = 11; // [10]", 1, "outside the slider [10]"),
        ("x = 5; // [10:0]", 1, "ends below where it starts"),
        ("x = 5; // [0:0:10]", 1, "needs a positive step"),
        ("x = 5; // [0]", 1, "needs a maximum of 1 or more"),
        ("x = 5; // [1, 2, 3]", 1, "the default 5 is not one of 1, 2, 3"),
        ("x = 5; // [5:Five, S:Small]", 1, 'the dropdown value "S" is not a number'),
        ('s = "xl"; // [S, M:Medium]', 1, 'the default "xl" is not one of "S", "M" (Medium)'),
        ('s = "Ada Lovelace"; // 5', 1, "the default is 12 characters long, above its maximum 5"),
        ("v = [50, 200]; // [0:100]", 1, "item 1 of the default, 200, is outside [0:100]"),
        ('s = "abc;\nx = 1;', 1, "never closed"),
        ("x = 1;\n/* a comment\nx = 2;", 2, "never closed with '*/'"),
        ("x = 1;\nmodule m() {\n  cube(1);\n", 2, "'{' is never closed"),
        ("x = 1;\ncube(1));\n", 2, "')' closes nothing"),
        ("x = [1, 2);\n", 1, "')' closes the '[' opened on line 1"),
        ("x = 1;\ny = 2", 2, "the assignment to y has no ';'"),
        ("include <lib.scad\nx = 1;", 1, "has no closing '>'"),
    ],
)
def test_a_model_whose_parameters_cannot_be_read_is_refused_with_the_line(
    source: str, line: int, message: str
) -> None:
    with pytest.raises(InvalidProduct) as caught:
        parse_customizer(source, "lamp.scad")
    [problem] = caught.value.problems
    assert problem.pointer == f"lamp.scad:{line}"
    assert problem.message.startswith(f"line {line}: ")
    assert message in problem.message
    assert f"line {line}" in caught.value.message


def test_every_contradicting_line_is_listed() -> None:
    source = "a = 15; // [0:10]\nb = 1;\nc = 3; // [1, 2]\n"
    with pytest.raises(InvalidProduct) as caught:
        parse_customizer(source, "m.scad")
    assert [p.pointer for p in caught.value.problems] == ["m.scad:1", "m.scad:3"]
    assert caught.value.problems[0].message.startswith("line 1: a: ")


def test_comments_and_strings_do_not_confuse_the_reader() -> None:
    source = (
        '// a "quote in a comment\n'
        's = "a { brace and // slashes"; // 40\n'
        "/* { */ t = 1; // [0:3]\n"
        "module m() { }\n"
    )
    s, t = parse_customizer(source).parameters
    assert (s.default, s.max_length) == ("a { brace and // slashes", 40)
    assert (t.default, t.maximum) == (1, 3)


def test_windows_line_endings_read_as_unix_ones() -> None:
    source = "// Height\r\nx = 5; // [0:10]\r\n"
    assert (only(source).description, only(source).maximum) == ("Height", 10)


def test_the_nameplate_reads_as_its_author_wrote_it() -> None:
    parameters = {p.name: p for p in parse_customizer(NAMEPLATE, "nameplate.scad").parameters}
    assert list(parameters) == [
        "name",
        "letter_size",
        "font",
        "shape",
        "thickness",
        "size",
        "border",
        "holes",
    ]
    assert parameters["name"] == ScadParameter(
        name="name",
        kind="string",
        default="Ada",
        description="The name on the plate",
        tab="Text",
        line=5,
        max_length=12,
        widget="text",
    )
    assert parameters["letter_size"].minimum == 4
    assert parameters["shape"].options == (("round", "Rounded"), ("square", "Square"))
    assert parameters["size"].default == [60, 20]
    assert parameters["holes"].options == ((0, "0"), (2, "2"), (4, "4"))


# ---- the JSON Schema -------------------------------------------------------------------------


def test_the_schema_groups_tabs_and_labels_choices() -> None:
    schema = parse_customizer(NAMEPLATE).json_schema("Nameplate", "A name on a plate.")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["title"], schema["description"]) == ("Nameplate", "A name on a plate.")
    assert (schema["type"], schema["required"], schema["additionalProperties"]) == (
        "object",
        [],
        False,
    )
    assert schema["x-tabs"] == ["Text", "Plate"]
    properties = schema["properties"]
    assert properties["letter_size"] == {
        "title": "letter_size",
        "description": "Letter height in mm",
        "type": "number",
        "minimum": 4,
        "maximum": 14,
        "x-step": 0.5,
        "default": 10,
        "x-tab": "Text",
        "x-widget": "slider",
    }
    assert properties["shape"]["enum"] == ["round", "square"]
    assert properties["shape"]["oneOf"] == [
        {"const": "round", "title": "Rounded"},
        {"const": "square", "title": "Square"},
    ]
    assert properties["name"]["maxLength"] == 12
    assert properties["thickness"]["type"] == "integer"
    assert properties["size"]["items"] == {
        "type": "integer",
        "minimum": 10,
        "maximum": 100,
        "x-step": 1,
    }
    assert (properties["size"]["minItems"], properties["size"]["maxItems"]) == (2, 2)
    assert properties["border"] == {
        "title": "border",
        "description": "",
        "type": "boolean",
        "default": True,
        "x-tab": "Plate",
        "x-widget": "checkbox",
    }
    json.dumps(schema, allow_nan=False)  # plain JSON


@pytest.mark.parametrize(
    ("source", "multiple_of"),
    [
        ("x = 10; // [0:5:100]", 5),
        ("x = 3; // [1:2:9]", None),  # the grid 1, 3, 5... is no multiple of 2
        ("x = 1; // [0:0.5:5]", None),  # fractional steps are checked by problems() alone
        ("x = 1; // [0:10]", None),
    ],
)
def test_multiple_of_only_where_it_says_the_same_as_the_slider(
    source: str, multiple_of: int | None
) -> None:
    schema = parse_customizer(source).json_schema()["properties"]["x"]
    assert schema.get("multipleOf") == multiple_of


# ---- values checked against the parameters --------------------------------------------------


@pytest.fixture(scope="module")
def nameplate() -> Customizer:
    return parse_customizer(NAMEPLATE)


@pytest.mark.parametrize(
    ("values", "pointer", "message"),
    [
        (
            {"letter_size": 15},
            "/letter_size",
            "letter_size must be between 4 and 14 in steps of 0.5 (got 15)",
        ),
        (
            {"letter_size": 4.2},
            "/letter_size",
            "letter_size must be between 4 and 14 in steps of 0.5 (got 4.2)",
        ),
        (
            {"letter_size": "12"},
            "/letter_size",
            'letter_size must be a number between 4 and 14 in steps of 0.5 (got "12")',
        ),
        (
            {"letter_size": True},
            "/letter_size",
            "letter_size must be a number between 4 and 14 in steps of 0.5 (got true)",
        ),
        (
            {"letter_size": float("nan")},
            "/letter_size",
            "letter_size must be a number between 4 and 14 in steps of 0.5 (got NaN)",
        ),
        (
            {"letter_size": float("inf")},
            "/letter_size",
            "letter_size must be a number between 4 and 14 in steps of 0.5 (got Infinity)",
        ),
        (
            {"letter_size": 10**400},
            "/letter_size",
            "letter_size must be a number between 4 and 14 in steps of 0.5 (got 1000",
        ),
        (
            {"letter_size": None},
            "/letter_size",
            "letter_size must be a number between 4 and 14 in steps of 0.5 (got null)",
        ),
        (
            {"thickness": 2.5},
            "/thickness",
            "thickness must be a whole number between 1 and 5 (got 2.5)",
        ),
        ({"thickness": 0}, "/thickness", "thickness must be between 1 and 5 (got 0)"),
        (
            {"name": "Ada Lovelace 1815"},
            "/name",
            "name must be at most 12 characters long (got 17)",
        ),
        ({"name": 7}, "/name", "name must be a string of at most 12 characters (got 7)"),
        (
            {"shape": "rund"},
            "/shape",
            'shape must be one of "round" (Rounded), "square" (Square) (got "rund")'
            ' (did you mean "round"?)',
        ),
        (
            {"shape": "Rounded"},
            "/shape",
            'shape must be one of "round" (Rounded), "square" (Square) (got "Rounded")',
        ),
        ({"holes": 3}, "/holes", "holes must be one of 0, 2, 4 (got 3)"),
        ({"holes": "2"}, "/holes", 'holes must be one of 0, 2, 4 (got "2")'),
        ({"holes": True}, "/holes", "holes must be one of 0, 2, 4 (got true)"),
        ({"border": 1}, "/border", "border must be true or false (got 1)"),
        ({"border": "true"}, "/border", 'border must be true or false (got "true")'),
        (
            {"size": [60]},
            "/size",
            "size must be a list of 2 whole numbers, each between 10 and 100 (got [60])",
        ),
        (
            {"size": "60x20"},
            "/size",
            'size must be a list of 2 whole numbers, each between 10 and 100 (got "60x20")',
        ),
        ({"size": [60, 200]}, "/size/1", "size[1] must be between 10 and 100 (got 200)"),
        (
            {"size": [60.5, 20]},
            "/size/0",
            "size[0] must be a whole number between 10 and 100 (got 60.5)",
        ),
        (
            {"size": [60, "20"]},
            "/size/1",
            'size[1] must be a whole number between 10 and 100 (got "20")',
        ),
        (
            {"lettersize": 12},
            "/lettersize",
            'unknown parameter "lettersize" (did you mean "letter_size"?); parameters are name,'
            " letter_size, font, shape, thickness, size, border, holes",
        ),
        ({"NAME": "x"}, "/NAME", 'unknown parameter "NAME" (did you mean "name"?)'),
        ({"$fn": 200}, "/$fn", 'unknown parameter "$fn"'),  # hidden: not the customer's
        ({"a/b": 1}, "/a~1b", 'unknown parameter "a/b"'),
    ],
)
def test_each_bad_value_is_named_with_what_is_allowed(
    nameplate: Customizer, values: dict[str, Any], pointer: str, message: str
) -> None:
    [problem] = nameplate.problems(values)
    assert problem.pointer == pointer
    assert problem.message.startswith(message)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"letter_size": 4},
        {"letter_size": 14.0},
        {"letter_size": 13.5},
        {"letter_size": 4.1 + 0.4},  # float noise on a step is not a different value
        {"thickness": 3.0},  # 3.0 is the whole number 3, as JSON Schema counts
        {"name": "Zoë", "font": "Liberation Serif", "shape": "square", "holes": 4},
        {"size": [10, 100], "border": False},
        {"name": ""},
    ],
)
def test_good_values_have_no_problems(nameplate: Customizer, values: dict[str, Any]) -> None:
    assert nameplate.problems(values) == []


def test_every_problem_is_reported_at_once(nameplate: Customizer) -> None:
    found = nameplate.problems({"letter_size": 99, "shape": 1, "colour": "red", "size": [1, 2]})
    assert [p.pointer for p in found] == ["/letter_size", "/shape", "/colour", "/size/0", "/size/1"]


def test_parameters_must_be_an_object(nameplate: Customizer) -> None:
    [problem] = nameplate.problems([1, 2])  # type: ignore[arg-type]
    assert (problem.pointer, problem.message) == (
        "",
        "parameters must be an object of values (got [1, 2])",
    )


def test_defaults_fill_what_the_customer_left_out(nameplate: Customizer) -> None:
    values = nameplate.with_defaults({"name": "Grace", "size": [80, 25]})
    assert values == {
        "name": "Grace",
        "letter_size": 10,
        "font": "Liberation Sans",
        "shape": "round",
        "thickness": 2,
        "size": [80, 25],
        "border": True,
        "holes": 2,
    }
    assert nameplate.problems(values) == []
    defaults = nameplate.with_defaults({})
    defaults["size"].append(1)  # the caller's copy, not the parameter's default
    assert nameplate.with_defaults({})["size"] == [60, 20]


def test_the_ring_size_dropdown_keeps_its_labels() -> None:
    ring = parse_customizer(RING, "ring.scad")
    size = ring.parameter("ring_size")
    assert size is not None
    assert size.options == ((5, "US 5"), (6, "US 6"), (7, "US 7"), (8, "US 8"), (9, "US 9"))
    assert (size.tab, size.description, size.integer) == ("Size", "US ring size", True)
    [problem] = ring.problems({"ring_size": 10, "thickness": 1.25})[:1]
    assert problem.message == (
        "ring_size must be one of 5 (US 5), 6 (US 6), 7 (US 7), 8 (US 8), 9 (US 9) (got 10)"
    )
    [thick] = ring.problems({"thickness": 1.25})
    assert thick.message == "thickness must be between 1.2 and 3 in steps of 0.1 (got 1.25)"
    assert ring.problems({"thickness": 1.3, "band_width": 7.5, "profile": "flat"}) == []


@pytest.mark.parametrize("model", [NAMEPLATE, RING])
def test_the_schema_and_the_checks_agree(model: str) -> None:
    """A JSON Schema validator and ``problems`` accept and refuse the same values."""
    import jsonschema  # a dev dependency: never skipped

    customizer = parse_customizer(model)
    schema = customizer.json_schema("Model")
    validator = jsonschema.Draft202012Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    samples: list[dict[str, Any]] = [customizer.with_defaults({})]
    for parameter in customizer.parameters:
        for value in _samples(parameter):
            samples.append({parameter.name: value})
    for values in samples:
        assert validator.is_valid(values) == (customizer.problems(values) == []), values


def _samples(parameter: ScadParameter) -> list[Any]:
    """Good and bad values of one parameter that a JSON Schema can judge alone (off-step
    fractional values are ``problems``'s own rule, so they are left out)."""
    bad: list[Any] = ["1", True, None, [], {}]
    if parameter.kind == "vector":
        low = parameter.minimum or 0
        return [*bad, [low] * len(parameter.default), [low - 1] * len(parameter.default), [low]]
    if parameter.options:
        return [*bad, *(value for value, _ in parameter.options), "nothing", 12345]
    if parameter.kind == "string":
        return [
            *bad,
            "",
            "x" * (parameter.max_length or 3),
            "x" * ((parameter.max_length or 3) + 1),
        ]
    if parameter.kind == "boolean":
        return [*bad[:1], *bad[2:], True, False, 0]
    low, high = parameter.minimum, parameter.maximum
    assert low is not None and high is not None
    return [*bad, low, high, low - 1, high + 1, parameter.default]


# ---- against the openscad program ------------------------------------------------------------

CORPUS = """\
// Described at column 0
plain = 5;
  // indented, not a description
indented = 5.5;
// first line
// second line
two_lines = 1; // 0.5
// a // b
slashes = 2; //[10]
range2 = 5; // [0:10]
range3 = 10; // [4:0.5:14]
range_neg = -5; // [-10 : 10]
sci = 1e3; // [0:100:2e3]
sci_small = 1.5E-1; // [0:.05:1]
drop_num = 2; // [0, 1, 2, 3]
drop_lab = 10; // [10:Small, 20:Large]
drop_words = "foo"; // [foo, bar, baz]
drop_words_lab = "S"; // [S:Small, M:Medium size, L:Large 12]
drop_quoted = "a b"; // ["a b":Two words, "c:d":Colon]
drop_num_str = "10"; // [10, 20, 1e6]
drop_paren = 1; // [1:One (I), 2:Two (II)]
len_plain = "Ada"; // 12
len_bracket = "Ada"; // [12]
text_free = "Ada"; // some words
flag = true;
flag_ann = false; // [0:1]
vec = [1, 2, 3];
vec_range = [1.5, 2]; // [0:0.5:10]
vec4 = [10, 20, 30, 40]; // [0:100]
bad_trailing = 5; // [0:10] mm
bad_open = 5; // [0:10
bad_pair = 5; // [1 2]
bad_mixed = 5; // [1:2:3, 4]
semi_a = 5; semi_b = 6; // [0:10]
nospace = 5;// [0:10]
paren = (5); // [0:10]
plus = +5;
negneg = -(-5);
notzero = !0;
expr = 2 * 3;
undefd = undef;
range_val = [0:10];
long_vec = [1, 2, 3, 4, 5];
str_vec = ["a", "b"];
empty_vec = [];
nested = [[1, 2]];
escaped = "a\\"b\\x41"; // ["a\\"bA", other]
/* [Size] */
in_size = 1; // [1:5]
/*[ Global ]*/
spaced_global = 2;
/* [Global] */
global = 3;
/* [a] [b] */
multi = 4;
/* just a note */
after_note = 5;
/*
[Not a tab]
*/
after_multiline = 6;
/* [Same line] */ same_line = 7;
/* [Hidden] */
hidden = 8;
/* [Shown] */
shown = 9;
reassigned = 1; // [0:10]
reassigned = 3; // [0:5]
comment_quote = "x"; // [x, "y
module m() { cube(1); }
after_module = 1; // [0:10]
m();
"""


def _openscad_annotations(ast: str) -> dict[str, dict[str, Any]]:
    """What ``openscad -o x.ast`` prints above each parameter: its annotations, its value."""
    found: dict[str, dict[str, Any]] = {}
    pending: dict[str, Any] = {}
    for line in ast.splitlines():
        annotation = re.fullmatch(r"//(Parameter|Description|Group)\((.*)\)", line)
        if annotation:
            pending[annotation.group(1)] = _literal(annotation.group(2))
            continue
        assignment = re.fullmatch(r"(\$?\w+) = (.*);", line)
        if assignment and "Parameter" in pending:
            found[assignment.group(1)] = {"default": _literal(assignment.group(2)), **pending}
        pending = {}
    return found


def _literal(text: str) -> Any:
    value = literal_value(tokenize(text).tokens)
    assert value is not NOT_LITERAL, text
    return value


def _our_annotations(source: str) -> dict[str, dict[str, Any]]:
    """The same, as fabflow reads the source."""
    tokens = tokenize(source)
    stop = first_brace_line(tokens)
    comments = CommentIndex(tokens)
    found: dict[str, dict[str, Any]] = {}
    for assignment in top_level_assignments(tokens, "corpus.scad"):
        if assignment.value is NOT_LITERAL or (stop is not None and assignment.line >= stop):
            continue
        annotation = parse_annotation(comments.annotation(assignment.line))
        read: dict[str, Any] = {"default": assignment.value, "Parameter": _plain(annotation)}
        if text := comments.description(assignment.line):
            read["Description"] = text
        if (tab := comments.tab(assignment.line)) is not None:
            read["Group"] = tab
        found[assignment.name] = read
    return found


def _plain(annotation: Any) -> Any:
    if isinstance(annotation, list):
        return [_plain(item) for item in annotation]
    if isinstance(annotation, Labelled):
        return [annotation.value, annotation.label]
    return annotation


@pytest.mark.skipif(
    shutil.which("openscad") is None, reason="the openscad program is not installed"
)
def test_annotations_match_openscad(tmp_path: Path) -> None:
    model = tmp_path / "corpus.scad"
    model.write_text(CORPUS)
    subprocess.run(
        ["openscad", "-o", str(tmp_path / "corpus.ast"), str(model)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = _openscad_annotations((tmp_path / "corpus.ast").read_text())
    ours = _our_annotations(CORPUS)
    assert len(theirs) > 50
    assert ours == theirs
    assert theirs["range3"]["Parameter"] == ScadRange(4, 0.5, 14)
    assert "after_module" not in theirs


@pytest.mark.skipif(
    shutil.which("openscad") is None, reason="the openscad program is not installed"
)
@pytest.mark.parametrize(("model", "name"), [(NAMEPLATE, "nameplate"), (RING, "ring")])
def test_the_models_run_with_their_defaults_and_a_customers_values(
    tmp_path: Path, model: str, name: str
) -> None:
    """openscad evaluates the test models with their defaults, and with every parameter set
    by ``-D`` from ``with_defaults`` (the values a renderer passes)."""
    path = tmp_path / f"{name}.scad"
    path.write_text(model)
    customizer = parse_customizer(model)
    defines = []
    for key, value in customizer.with_defaults({}).items():
        defines += ["-D", f"{key}={json.dumps(value)}"]
    for extra in ([], defines):
        done = subprocess.run(
            ["openscad", "-o", str(tmp_path / f"{name}.csg"), *extra, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "WARNING" not in done.stderr, done.stderr
