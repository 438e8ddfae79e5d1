"""The files a model reads are found in its code (not in its comments or strings), and a
product that reads outside its folder, or a file it does not have, is refused at file:line."""

from __future__ import annotations

import pytest

from fabflow.errors import InvalidProduct
from fabflow.production.scad.references import (
    FileReference,
    file_references,
    read_files,
    reference_problems,
)


def found(source: str) -> list[tuple[str, str | None, int]]:
    return [(r.kind, r.path, r.line) for r in file_references(source)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("include <a.scad>", [("include", "a.scad", 1)]),
        ("include<a.scad>\n", [("include", "a.scad", 1)]),
        ("\nuse <lib/b.scad>", [("use", "lib/b.scad", 2)]),
        ("use <Open Sans.ttf>", [("use", "Open Sans.ttf", 1)]),
        ('import("part.stl");', [("import", "part.stl", 1)]),
        ('import(file = "part.stl", convexity = 3);', [("import", "part.stl", 1)]),
        ('import(convexity = 3, file = "part.stl");', [("import", "part.stl", 1)]),
        ('import(filename = "old.stl");', [("import", "old.stl", 1)]),
        (
            'import_stl("a.stl"); import_dxf("b.dxf");',
            [("import", "a.stl", 1), ("import", "b.dxf", 1)],
        ),
        ('import(("p.stl"));', [("import", "p.stl", 1)]),
        (
            '%import("a.stl");\n#surface("b.dat");',
            [("import", "a.stl", 1), ("surface", "b.dat", 2)],
        ),
        ('surface(file = "x.dat", center = true);', [("surface", "x.dat", 1)]),
        ('surface("h.png", invert = true);', [("surface", "h.png", 1)]),
        ('\n\nimport(\n  "a.stl"\n);', [("import", "a.stl", 3)]),
        # expressions: the path cannot be checked
        ('import(str("p", 1, ".stl"));', [("import", None, 1)]),
        ("import(name);", [("import", None, 1)]),
        ("surface(file = heightmap);", [("surface", None, 1)]),
        # the deprecated DXF readers
        ('linear_extrude(height = 5) import("s.svg");', [("import", "s.svg", 1)]),
        ("linear_extrude(5) square(1);", []),
        ("linear_extrude(h) square(1);", []),  # a first argument that is not a string: height
        ('linear_extrude("old.dxf");', [("import", "old.dxf", 1)]),
        ("linear_extrude(file = name);", [("import", None, 1)]),
        ('rotate_extrude(file = "r.dxf");', [("import", "r.dxf", 1)]),
        ("rotate_extrude(angle = 90) square(1);", []),
        ('w = dxf_dim(file = "d.dxf", name = "w");', [("import", "d.dxf", 1)]),
        ('w = dxf_dim("d.dxf");', []),  # dxf_dim reads only file=
        # mentions that read nothing
        ('// import("no.stl")\n/* include <no.scad> */', []),
        ('s = "import(\\"no.stl\\") include <no.scad>";', []),
        ('my_import("a.stl"); importer("b.stl"); x = import_enabled;', []),
        ("module surface(h) cube(h);", []),
        ("import();", []),
        ('module part() import("x.stl");\npart();', [("import", "x.stl", 1)]),
    ],
)
def test_the_files_a_source_reads(source: str, expected: list[tuple[str, str | None, int]]) -> None:
    assert found(source) == expected


def test_a_reference_says_how_it_was_written() -> None:
    assert FileReference("include", "a.scad", 1, "include").describe() == "include <a.scad>"
    assert FileReference("import", "b.dxf", 1, "linear_extrude").describe() == (
        'linear_extrude("b.dxf")'
    )
    assert FileReference("surface", None, 1, "surface").describe() == "surface(...)"


def test_a_source_that_does_not_tokenize_is_refused() -> None:
    with pytest.raises(InvalidProduct) as caught:
        file_references('x = 1;\nimport("a.stl);\n', "m.scad")
    assert caught.value.problems[0].pointer == "m.scad:2"


LIB = """\
// Shared shapes.
module rounded(size, r) {
  offset(r = r) offset(delta = -r) square(size, center = true);
}
module logo() {
  linear_extrude(1) import("logo.svg");
}
"""

MAIN = """\
include <settings.scad>
use <lib/shapes.scad>
use <fonts/Plate Sans.ttf>

plate = [60, 20]; // [10:100]
linear_extrude(2) rounded(plate, 3);
translate([0, 0, 2]) logo();
surface(file = "relief.dat");
"""

FOLDER = {
    "main.scad": MAIN,
    "settings.scad": "$fn = 48;\n",
    "lib/shapes.scad": LIB,
}
ASSETS = {"lib/logo.svg", "fonts/Plate Sans.ttf", "relief.dat", "unused.stl"}


def test_a_product_that_reads_only_its_own_files_has_no_problems() -> None:
    assert reference_problems("main.scad", FOLDER, set(FOLDER) | ASSETS) == []


def test_the_files_read_are_followed_through_include_and_use() -> None:
    read = read_files("main.scad", FOLDER, set(FOLDER) | ASSETS)
    assert read == set(FOLDER) | ASSETS - {"unused.stl"}


@pytest.mark.parametrize(
    ("line", "pointer", "message"),
    [
        (
            'import("/etc/passwd");',
            "main.scad:9",
            'line 9: import("/etc/passwd"): an absolute path',
        ),
        ("include </etc/passwd>", "main.scad:9", "line 9: include </etc/passwd>: an absolute path"),
        ('surface(file = "/dev/zero");', "main.scad:9", "an absolute path"),
        ('import("C:\\\\parts\\\\a.stl");', "main.scad:9", "an absolute path"),
        ('import("../secret.stl");', "main.scad:9", "'..' leaves the product's folder"),
        ("use <lib/../../x.scad>", "main.scad:9", "'..' leaves the product's folder"),
        ("include <lib/../settings.scad>", "main.scad:9", "'..' leaves the product's folder"),
        ('import("parts\\\\a.stl");', "main.scad:9", "write folders with '/'"),
        ('import("gone.stl");', "main.scad:9", "gone.stl is not in the product's folder"),
        (
            'import("relief.dta");',
            "main.scad:9",
            'not in the product\'s folder (did you mean "relief.dat"?)',
        ),
        ("use <MCAD/involute_gears.scad>", "main.scad:9", "MCAD/involute_gears.scad is not in"),
        ('import("logo.svg");', "main.scad:9", "logo.svg is not in"),  # it is lib/logo.svg
        ('import(str("part", 1, ".stl"));', "main.scad:9", "named by an expression"),
        ('import("");', "main.scad:9", "the file name is empty"),
    ],
)
def test_each_read_outside_the_folder_is_refused_at_its_line(
    line: str, pointer: str, message: str
) -> None:
    folder = {**FOLDER, "main.scad": MAIN + line + "\n"}
    [problem] = reference_problems("main.scad", folder, set(folder) | ASSETS)
    assert problem.pointer == pointer
    assert message in problem.message


def test_a_library_reads_from_its_own_folder() -> None:
    folder = {**FOLDER, "lib/shapes.scad": LIB + 'module base() import("base.stl");\n'}
    [problem] = reference_problems("main.scad", folder, set(folder) | ASSETS | {"base.stl"})
    assert problem.pointer == "lib/shapes.scad:8"
    assert "lib/base.stl is not in the product's folder" in problem.message
    assert reference_problems("main.scad", folder, set(folder) | ASSETS | {"lib/base.stl"}) == []


def test_dxf_dim_reads_from_the_main_files_folder() -> None:
    """OpenSCAD resolves dxf_dim's file from the document, not from the library (#217)."""
    folder = {**FOLDER, "lib/shapes.scad": LIB + 'w = dxf_dim(file = "d.dxf", name = "w");\n'}
    assert reference_problems("main.scad", folder, set(folder) | ASSETS | {"d.dxf"}) == []


def test_every_problem_of_every_file_is_listed() -> None:
    folder = {
        "main.scad": 'include <a.scad>\nimport("/etc/passwd");\n',
        "a.scad": 'use <b.scad>\n\nimport("../up.stl");\n',
        "b.scad": "include <a.scad>\nx = 1;\nsurface(file = f);\n",  # a cycle back to a
    }
    problems = reference_problems("main.scad", folder)
    assert [p.pointer for p in problems] == ["main.scad:2", "a.scad:3", "b.scad:3"]


def test_a_scad_file_nothing_reads_is_not_checked() -> None:
    folder = {**FOLDER, "old/draft.scad": 'import("/etc/passwd");\n'}
    assert reference_problems("main.scad", folder, set(folder) | ASSETS) == []


def test_a_library_that_does_not_tokenize_is_a_problem_at_its_line() -> None:
    folder = {**FOLDER, "settings.scad": "$fn = 48;\nmodule m() {\n"}
    [problem] = reference_problems("main.scad", folder, set(folder) | ASSETS)
    assert problem.pointer == "settings.scad:2"
    assert "never closed" in problem.message


def test_known_defaults_to_the_scad_files() -> None:
    [problem] = reference_problems("main.scad", {"main.scad": 'import("a.stl");'})
    assert problem.pointer == "main.scad:1"
    assert reference_problems("main.scad", {"main.scad": "include <b.scad>", "b.scad": ""}) == []
