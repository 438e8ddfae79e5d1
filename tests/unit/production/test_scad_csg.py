"""The grammar of the ``.csg`` files ``openscad`` exports."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from manifold3d import CrossSection

from fabflow.errors import RenderFailed
from fabflow.production.scad.csg import CsgSyntaxError, Node, Value, parse
from fabflow.production.scad.evaluate import (
    FAST_PATH_NODES,
    evaluate,
    extrude_slices,
    resize_factors,
)
from fabflow.production.scad.primitives import Unsupported, fragments


def _only(text: str, *, escaped: bool = False) -> Node:
    (node,) = parse(text, escaped=escaped)
    return node


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a = 1", 1.0),
        ("a = -2.5", -2.5),
        ("a = 1e-05", 1e-05),
        ("a = 1e+20", 1e20),
        ("a = 2E3", 2000.0),
        ("a = .5", 0.5),
        ("a = 7.", 7.0),
        ("a = true", True),
        ("a = false", False),
        ("a = undef", None),
        ("a = inf", math.inf),
        ("a = -inf", -math.inf),
        ('a = "text"', "text"),
        ('a = ""', ""),
        ("a = []", ()),
        ("a = [1, [2, 3], []]", (1.0, (2.0, 3.0), ())),
        ("a = [2,2,2]", (2.0, 2.0, 2.0)),
        ('a = ["x", true, undef]', ("x", True, None)),
    ],
)
def test_values(text: str, value: Value) -> None:
    assert _only(f"f({text});").args["a"] == value


def test_nan() -> None:
    value = _only("f(a = nan);").args["a"]
    assert isinstance(value, float) and math.isnan(value)


def test_named_special_and_positional_arguments() -> None:
    node = _only("cylinder($fn = 24, $fa = 12, $fs = 2, h = 5, r1 = 2, r2 = 2, center = false);")
    assert node.args == {
        "$fn": 24.0,
        "$fa": 12.0,
        "$fs": 2.0,
        "h": 5.0,
        "r1": 2.0,
        "r2": 2.0,
        "center": False,
    }
    matrix = _only("multmatrix([[1, 0, 0, 5], [0, 1, 0, 7.5], [0, 0, 1, -1], [0, 0, 0, 1]]);")
    assert matrix.args["#0"] == (
        (1.0, 0.0, 0.0, 5.0),
        (0.0, 1.0, 0.0, 7.5),
        (0.0, 0.0, 1.0, -1.0),
        (0.0, 0.0, 0.0, 1.0),
    )


def test_nested_children_lines_and_modifiers() -> None:
    text = (
        "difference() {\n"
        "\tcube(size = [40, 15, 3], center = false);\n"
        "\tmultmatrix([[1, 0, 0, 5], [0, 1, 0, 7.5], [0, 0, 1, -1], [0, 0, 0, 1]]) {\n"
        "\t\tcylinder(h = 5, r1 = 2, r2 = 2, center = false);\n"
        "\t}\n"
        "}\n"
        "%sphere(r = 2);\n"
        "#group();\n"
        "group() {\n}\n"
    )
    top = parse(text)
    assert [(n.name, n.modifier, n.line) for n in top] == [
        ("difference", "", 1),
        ("sphere", "%", 7),
        ("group", "#", 8),
        ("group", "", 9),
    ]
    cube, move = top[0].children
    assert (cube.name, cube.line, move.children[0].name, move.children[0].line) == (
        "cube",
        2,
        "cylinder",
        4,
    )
    assert top[3].children == ()


def test_empty_file() -> None:
    assert parse("") == ()
    assert parse("\n\n") == ()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('"plain"', "plain"),
        ('"a"b\\c\nd"', 'a"b\\c\nd'),  # openscad 2021 writes texts unescaped
        ('"say "hi" twice"', 'say "hi" twice'),
        ('"ends with \\"', "ends with \\"),
    ],
)
def test_raw_strings(raw: str, text: str) -> None:
    node = _only(f'text(text = {raw}, size = 10, font = "");')
    assert node.args["text"] == text
    assert node.args["size"] == 10.0 and node.args["font"] == ""


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        ('"a\\"b"', 'a"b'),
        ('"back\\\\slash"', "back\\slash"),
        ('"x\\ny\\tz\\r"', "x\ny\tz\r"),
        ('"\\x41\\u00e9\\U01F600"', "Aé\U0001f600"),
    ],
)
def test_escaped_strings(escaped: str, text: str) -> None:
    assert _only(f"text(text = {escaped});", escaped=True).args["text"] == text


def test_a_text_that_fakes_arguments_is_refused() -> None:
    # a customer's text 'A", size = 99, font = "' would duplicate size in a raw dump
    with pytest.raises(CsgSyntaxError, match="given twice"):
        parse('text(text = "A", size = 99, font = "", size = 10, font = "");')


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("cube(size = 1)", 1, "expected ';'"),
        ("cube(size = );", 1, "expected a value"),
        ("\n\ncube(size = [1, 2;", 3, "expected ','"),
        ("group() {\ncube();", 2, "expected '}'"),
        ("cube(size = 1));", 1, "expected ';'"),
        ("cube(size = 1);\n}", 2, "expected a statement"),
        ('text(text = "never ends);', 1, "does not end"),
        ('f(a = "x\\q");', 1, "unknown escape"),
        ("= 3;", 1, "expected a name"),
        ("f(a = 1, a = 2);", 1, "given twice"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    escaped = "\\q" in text
    with pytest.raises(CsgSyntaxError, match=message) as caught:
        parse(text, escaped=escaped)
    assert caught.value.line == line


# -- OpenSCAD's resolution rules, which the fast path must follow exactly ---------------------


@pytest.mark.parametrize(
    ("r", "fn", "fs", "fa", "count"),
    [
        (10.0, 0.0, 2.0, 12.0, 30),  # $fa wins: 360 / 12
        (1.0, 0.0, 2.0, 12.0, 5),  # never fewer than 5 from $fa/$fs
        (5.0, 0.0, 0.5, 5.0, 63),  # $fs wins: ceil(2 pi 5 / 0.5)
        (5.0, 17.0, 2.0, 12.0, 17),  # $fn wins
        (5.0, 2.0, 2.0, 12.0, 3),  # $fn below 3 means 3
        (5.0, 7.9, 2.0, 12.0, 7),  # $fn is truncated
        (1e-7, 64.0, 2.0, 12.0, 3),  # a radius below GRID_FINE
        (5.0, math.inf, 2.0, 12.0, 3),
    ],
)
def test_fragments(r: float, fn: float, fs: float, fa: float, count: int) -> None:
    assert fragments(r, fn, fs, fa) == count


@pytest.mark.parametrize(
    ("source", "slices"),
    [
        ("linear_extrude(height = 20, twist = 90, $fn = 0, $fa = 12, $fs = 2)", 8),
        ("linear_extrude(height = 10, twist = -120, slices = 30)", 30),
        ("linear_extrude(height = 5, twist = 90, $fn = 40, $fa = 12, $fs = 2)", 10),
        ("linear_extrude(height = 8, scale = [1.5, 0.5], $fn = 0, $fa = 12, $fs = 2)", 5),
        ("linear_extrude(height = 8, scale = [0.5, 0.5], $fn = 0, $fa = 12, $fs = 2)", 1),
    ],
)
def test_extrusion_slices(source: str, slices: int) -> None:
    node = _only(source + " { square(size = [10, 4], center = true); }")
    shape = CrossSection.square((10.0, 4.0), True)
    args = node.args
    twist = float(args.get("twist", 0.0))  # type: ignore[arg-type]
    scale = args.get("scale", (1.0, 1.0))
    assert isinstance(scale, tuple)
    height = float(args["height"])  # type: ignore[arg-type]
    assert extrude_slices(node, shape, height, twist, [float(v) for v in scale]) == slices  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("new", "auto", "size", "factors"),
    [
        ([20.0, 10.0, 5.0], [False] * 3, [8.0, 8.0, 8.0], [2.5, 1.25, 0.625]),
        ([0.0, 30.0, 0.0], [True] * 3, [6.0, 6.0, 4.0], [5.0, 5.0, 5.0]),
        ([0.0, 30.0, 0.0], [False] * 3, [6.0, 6.0, 4.0], [1.0, 5.0, 1.0]),
        ([10.0, 0.0], [True, False], [20.0, 5.0], [0.5, 1.0]),
        ([10.0, 0.0], [False, True], [20.0, 5.0], [0.5, 0.5]),
        ([4.0, 8.0, 0.0], [False, False, True], [2.0, 2.0, 2.0], [2.0, 4.0, 4.0]),
    ],
)
def test_resize_factors(
    new: list[float], auto: list[bool], size: list[float], factors: list[float]
) -> None:
    assert resize_factors(new, auto, size) == factors


def test_every_node_said_to_take_the_fast_path_has_a_builder(tmp_path: Path) -> None:
    for name in FAST_PATH_NODES:
        try:
            evaluate((Node(name),), tmp_path)
        except Unsupported as exc:
            assert exc.what != name, name  # an unknown node raises Unsupported(name)
        except RenderFailed:
            pass  # empty or flat: built, just nothing to show
