"""Both renderers of OpenSCAD models, against the real ``openscad`` program.

For every example product and one small model per primitive and operation, the fast path
(``.csg`` on manifold3d) and the program's own STL must agree: volume within 0.5 %, bounding
box within 0.05 mm, both closed. Hostile models fail with RenderFailed within their timeout, and
the next render still works.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from manifold3d import Manifold

from fabflow.errors import RenderFailed
from fabflow.production.scad.glyphs import font_file
from fabflow.production.scad.literals import define_arguments
from fabflow.production.scad.openscad import sandbox_available
from fabflow.production.scad.render import Rendered, render_model

pytestmark = pytest.mark.skipif(shutil.which("openscad") is None, reason="openscad not installed")

EXAMPLES = Path(__file__).parents[3] / "examples" / "products"

MODELS: dict[str, str] = {
    "cube": "cube([10, 7.5, 3]);",
    "cube_center": "cube(4, center = true);",
    "sphere_fn": "sphere(r = 5, $fn = 17);",
    "sphere_fa_fs": "sphere(r = 7.3, $fa = 5, $fs = 0.4);",
    "sphere_default": "sphere(3);",
    "cylinder": "cylinder(h = 8, r = 3, $fn = 30);",
    "cone_center": "cylinder(h = 6, r1 = 4, r2 = 0, center = true, $fs = 0.5);",
    "frustum": "cylinder(h = 5, d1 = 9, d2 = 4);",
    "polyhedron": (
        "polyhedron(points = [[0,0,0],[10,0,0],[10,7,0],[0,7,0],[0,0,5],[10,0,5],[10,7,5],"
        "[0,7,5]], faces = [[0,1,2,3],[4,5,1,0],[7,6,5,4],[5,6,2,1],[6,7,3,2],[7,4,0,3]]);"
    ),
    "square_circle": "linear_extrude(2) { square([6, 3], center = true); circle(2.2, $fn = 9); }",
    "polygon_holes": (
        "linear_extrude(3) polygon(points = [[0,0],[20,0],[20,20],[0,20],[5,5],[15,5],[15,15],"
        "[5,15]], paths = [[0,1,2,3],[4,5,6,7]]);"
    ),
    "polygon_plain": "linear_extrude(1.5) polygon([[0,0],[12,0],[6,9],[3,4]]);",
    "multmatrix": (
        "multmatrix([[1, 0.3, 0, 2], [0, 1, 0, 1], [0.2, 0, 1, 0], [0, 0, 0, 1]]) cube(5);"
        "rotate([30, 45, 60]) translate([8, 0, 0]) scale([1, 2, 0.5]) cube(3);"
        "mirror([1, 0, 0]) translate([3, 3, 0]) cube(2);"
    ),
    "booleans": (
        "difference() { cube(12, center = true); sphere(7.5, $fn = 40);"
        " cylinder(h = 20, r = 2, center = true); }"
        "translate([20, 0, 0]) intersection() { cube(8, center = true); sphere(5.2); }"
        "translate([0, 20, 0]) union() { cube(5); translate([2, 2, 2]) cube(5); }"
    ),
    "hull_3d": "hull() { cube(2); translate([10, 4, 0]) sphere(3); translate([0, 8, 5]) cube(1); }",
    "hull_2d": "linear_extrude(2) hull() { circle(3); translate([12, 0]) square(2); }",
    "minkowski_3d": "minkowski() { cube([10, 6, 2]); sphere(1, $fn = 16); }",
    "minkowski_concave": (
        "minkowski() { union() { cube([10, 2, 2]); cube([2, 10, 2]); } sphere(1, $fn = 12); }"
    ),
    "minkowski_2d": "linear_extrude(1) minkowski() { square([8, 4]); circle(1.5, $fn = 20); }",
    "offset_r": "linear_extrude(2) offset(r = 2, $fn = 24) square([10, 5]);",
    "offset_r_inner": "linear_extrude(2) offset(r = -1.5) difference() { square(12); square(4); }",
    "offset_delta": "linear_extrude(2) offset(delta = 1.5) polygon([[0,0],[10,0],[5,3],[0,8]]);",
    "offset_default_resolution": (
        "linear_extrude(1) offset(r = 0.89) square([2.4, 1.9], center = true);"
        "translate([0, 6, 0]) linear_extrude(1) offset(r = 3) square([2.4, 1.9]);"
        'translate([0, -8, 0]) linear_extrude(1) offset(r = 0.6) text("Ada g", size = 7);'
    ),
    "extrude_scaled_offset": (
        "linear_extrude(height = 3.8, scale = 1.4) offset(r = 0.9)"
        " square([2.4, 1.9], center = true);"
    ),
    "offset_chamfer": "linear_extrude(2) offset(delta = 2, chamfer = true) square([8, 6]);",
    "extrude_center": "linear_extrude(height = 6, center = true) circle(4, $fn = 32);",
    "extrude_twist": "linear_extrude(height = 20, twist = 90) square([10, 4], center = true);",
    "extrude_twist_slices": (
        "linear_extrude(height = 10, twist = -120, slices = 30) translate([2, 0]) square(5);"
    ),
    "extrude_scale": "linear_extrude(height = 8, scale = 0.4) square(10, center = true);",
    "extrude_scale_xy": "linear_extrude(height = 8, scale = [1.5, 0.5]) circle(5, $fn = 24);",
    "extrude_uneven_scale_one_slice": (
        "linear_extrude(height = 1.6, center = true, scale = [0.77, 1.37]) circle(r = 0.575);"
    ),
    "extrude_twist_collinear": (
        "linear_extrude(height = 4.35, twist = 40, scale = [1.4, 1.07])"
        " polygon([[0, 0], [2, 0], [4, 0], [4, 3], [2, 3], [0, 3], [0, 1.5]]);"
    ),
    "extrude_twist_scale": (
        "linear_extrude(height = 12, twist = 60, scale = 0.6, $fn = 40) square(8, center = true);"
    ),
    "extrude_twist_hole": (
        "linear_extrude(height = 10, twist = 45, center = true)"
        " difference() { square(12, center = true); circle(3, $fn = 6); }"
    ),
    "extrude_cone": "linear_extrude(height = 7, scale = 0) square(6, center = true);",
    "rotate_extrude": "rotate_extrude($fn = 48) translate([10, 0]) circle(2, $fn = 16);",
    "rotate_extrude_negative": (
        "rotate_extrude(angle = -130, $fn = 30) translate([5, 0]) square(2);"
    ),
    "rotate_extrude_odd": "rotate_extrude($fn = 7) translate([6, 0]) square([2, 3]);",
    "rotate_extrude_angle": "rotate_extrude(angle = 200) translate([8, 0]) square([2, 5]);",
    "rotate_extrude_default": "rotate_extrude() polygon([[2, 0], [6, 0], [4, 5]]);",
    "projection": (
        "linear_extrude(1) projection() rotate([40, 20, 0]) cube([10, 6, 4]);"
        "translate([0, 0, 5]) linear_extrude(1) projection(cut = true) sphere(6);"
    ),
    "text_default": 'linear_extrude(2) text("Fabflow", size = 9);',
    "text_aligned": (
        'linear_extrude(1.5) text("Qué?", size = 6, halign = "center", valign = "center",'
        ' spacing = 1.1, font = "Liberation Serif:style=Bold Italic", $fn = 40);'
    ),
    "text_bottom_right": (
        'linear_extrude(1) text("jump", size = 5, halign = "right", valign = "bottom");'
    ),
    "text_engraved": (
        "difference() { cube([60, 16, 3]); translate([4, 4, 2]) linear_extrude(2)"
        ' text("WAVY Ta", size = 8); }'
    ),
    "color_render": (
        "color([1, 0, 0]) render() cube(3); %sphere(30); #translate([5, 0, 0]) cube(2);"
    ),
    "resize": "resize([20, 10, 5]) sphere(4, $fn = 30);",
    "resize_auto": (
        "resize([0, 30, 0], auto = true) cylinder(h = 4, r = 3);"
        "translate([40, 0, 0]) linear_extrude(2) resize([10, 0], auto = [true, false])"
        ' text("Auto", size = 5);'
    ),
    "import_stl": 'translate([0, 0, 2]) import("part.stl"); cube(2);',
    "import_off_3mf": 'import("part.off"); translate([10, 0, 0]) import("part.3mf");',
}

TOLERANCE_VOLUME = 0.005
TOLERANCE_BOX = 0.05


def _write_model(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.scad").write_text(source, encoding="utf-8")
    part = Manifold.cylinder(4.0, 3.0, 1.0, 24).translate((1.0, 1.0, 0.0))
    mesh = part.to_mesh()
    import trimesh

    shape = trimesh.Trimesh(mesh.vert_properties[:, :3], mesh.tri_verts)
    shape.export(folder / "part.stl")
    shape.export(folder / "part.3mf")
    # OFF as openscad writes it: the header and counts on one line, a polygon for each cap
    (folder / "part.off").write_text(
        "OFF 8 6 0\n"
        + "".join(f"{x} {y} {z}\n" for x in (0, 3) for y in (0, 2) for z in (0, 1))
        + "4 0 1 3 2\n4 4 6 7 5\n4 0 4 5 1\n4 2 3 7 6\n4 0 2 6 4\n4 1 5 7 3\n"
    )
    return folder


def _assert_agree(fast: Rendered, slow: Rendered) -> None:
    for rendered in (fast, slow):
        assert rendered.solid.status().name == "NoError"
        assert not rendered.solid.is_empty()
        assert rendered.solid.volume() > 0
        # genus 1 - n for n separate bodies, + 1 per through hole
        assert -50 < rendered.solid.genus() < 1000
    assert fast.solid.genus() == slow.solid.genus()
    v_fast, v_slow = fast.solid.volume(), slow.solid.volume()
    assert abs(v_fast - v_slow) <= TOLERANCE_VOLUME * v_slow, (v_fast, v_slow)
    box_fast, box_slow = fast.solid.bounding_box(), slow.solid.bounding_box()
    gaps = [abs(a - b) for a, b in zip(box_fast, box_slow, strict=True)]
    assert max(gaps) <= TOLERANCE_BOX, (box_fast, box_slow)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fast_path_agrees_with_openscad(name: str, tmp_path: Path) -> None:
    folder = _write_model(tmp_path / name, MODELS[name])
    fast = render_model(folder, "main.scad", {}, mode="manifold", timeout=60)
    slow = render_model(folder, "main.scad", {}, mode="openscad", timeout=120)
    assert (fast.renderer, slow.renderer) == ("manifold", "openscad")
    _assert_agree(fast, slow)


def _example_folders() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir()) if EXAMPLES.is_dir() else []


@pytest.mark.parametrize("folder", _example_folders(), ids=lambda p: p.name)
def test_examples_agree_in_both_renderers(folder: Path) -> None:
    (main,) = [p.name for p in folder.glob("*.scad")]
    fast = render_model(folder, main, {}, mode="auto", timeout=60)
    assert fast.renderer == "manifold", fast.fallback_reason
    slow = render_model(folder, main, {}, mode="openscad", timeout=180)
    _assert_agree(fast, slow)


VARIANTS = [
    ("name_tag", {"name": "Zoë Ørsted", "corners": "chamfer", "hole": False, "style": "Italic"}),
    ("name_tag", {"name": "MAX", "corners": "square", "letter_size": 12.5, "relief": 2.2}),
    ("ring", {"word": "AMOR 2026", "comfort_fit": False, "inner_diameter": 21.3}),
    ("medal", {"label": "1st", "rim_twist": 0, "ridges": 9, "star_scale": 0.3}),
]


@pytest.mark.parametrize(("example", "values"), VARIANTS, ids=lambda v: str(v)[:24])
def test_example_parameters_agree_in_both_renderers(
    example: str, values: dict[str, object]
) -> None:
    folder = EXAMPLES / example
    main = f"{example}.scad"
    fast = render_model(folder, main, values, mode="manifold", timeout=60)
    slow = render_model(folder, main, values, mode="openscad", timeout=180)
    _assert_agree(fast, slow)


def test_parameters_reach_both_renderers(tmp_path: Path) -> None:
    source = (
        'label = "A"; width = 10;\n'
        "cube([width, 1, 1]); translate([0, 2, 0]) linear_extrude(2) text(label, size = 3);"
    )
    folder = _write_model(tmp_path / "params", source)
    values = {"label": 'Zoë \\ "quoted"', "width": 31.25}
    slow = render_model(folder, "main.scad", values, mode="openscad")
    auto = render_model(folder, "main.scad", values, mode="auto")
    assert auto.renderer == "openscad" and auto.fallback_reason  # a quote: the program renders
    plain = render_model(folder, "main.scad", {"label": "Zoë", "width": 31.25}, mode="auto")
    assert plain.renderer == "manifold"
    assert plain.solid.bounding_box()[3] == pytest.approx(31.25, abs=1e-4)
    assert abs(auto.solid.volume() - slow.solid.volume()) < 1e-6 * slow.solid.volume()


def test_twisted_projection_falls_back(tmp_path: Path) -> None:
    source = (
        "linear_extrude(height = 3, twist = -90, scale = 0.98) projection(cut = true)"
        " rotate([60.9, 54.9, 0]) cube([2.25, 4.65, 2.87], center = true);"
    )
    folder = _write_model(tmp_path / "twisted", source)
    rendered = render_model(folder, "main.scad", {}, mode="auto")
    assert rendered.renderer == "openscad"
    assert rendered.fallback_reason is not None and "projection" in rendered.fallback_reason


def test_partial_turn_in_few_steps_falls_back(tmp_path: Path) -> None:
    source = "rotate_extrude(angle = 90, $fn = 9) translate([4, 0]) circle(r = 2.6, $fn = 5);"
    folder = _write_model(tmp_path / "few", source)
    rendered = render_model(folder, "main.scad", {}, mode="auto")
    assert rendered.renderer == "openscad"
    assert rendered.fallback_reason == "rotate_extrude (a partial turn in fewer than 3 steps)"


def test_unsupported_node_falls_back_with_reason(tmp_path: Path) -> None:
    folder = _write_model(
        tmp_path / "surface", "cube(3); rotate_extrude() translate([-5, 0]) square(2);"
    )
    rendered = render_model(folder, "main.scad", {}, mode="auto")
    assert rendered.renderer == "openscad"
    assert rendered.fallback_reason is not None and "rotate_extrude" in rendered.fallback_reason
    with pytest.raises(RenderFailed, match="rotate_extrude"):
        render_model(folder, "main.scad", {}, mode="manifold")


@pytest.mark.parametrize("depth", [400, 1500])
def test_deeply_nested_tree_takes_the_fast_path(depth: int, tmp_path: Path) -> None:
    source = (
        f"module f(n) {{ if (n > 0) translate([0.01, 0, 0]) f(n - 1); else cube(1); }} f({depth});"
    )
    folder = _write_model(tmp_path / "deep", source)
    rendered = render_model(folder, "main.scad", {}, mode="auto")
    assert rendered.renderer == "manifold"
    assert rendered.solid.bounding_box()[0] == pytest.approx(depth / 100, abs=1e-3)
    assert sys.getrecursionlimit() < 20_000  # put back afterwards


def test_text_with_fonts_shipped_in_the_product_falls_back(tmp_path: Path) -> None:
    folder = _write_model(tmp_path / "font", 'linear_extrude(1) text("Hi"); cube(1);')
    shutil.copyfile(font_file("Liberation Mono"), folder / "mono.ttf")
    rendered = render_model(folder, "main.scad", {}, mode="auto")
    assert rendered.renderer == "openscad"
    assert rendered.fallback_reason == "text with fonts shipped in the product"


def test_literals_round_trip_through_openscad(tmp_path: Path) -> None:
    import subprocess

    values = {"s": 'a"; cube(100); b="\\\n\t\x01é', "n": 0.1, "tiny": 2.5e-300, "v": [1, -2.5]}
    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "main.scad").write_text("echo(str(s) == s, n * 10, tiny, v); cube(1);")
    done = subprocess.run(
        ["openscad", "-o", str(folder / "out.csg"), *define_arguments(values), "main.scad"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ECHO: true, 1, 2.5e-300, [1, -2.5]" in done.stderr
    assert "cube(size = [1, 1, 1]" in (folder / "out.csg").read_text()
    assert "100" not in (folder / "out.csg").read_text()


# (source, expected message, timeout, memory MB)
HOSTILE = {
    "passwd": ('import("/etc/passwd");', "outside the product", 4.0, 1024),
    "passwd_relative": (
        'import("../../../../../../etc/passwd");',
        "outside the product",
        4.0,
        1024,
    ),
    "recursion": ("module f(n) { f(n + 1); } f(0);", "Recursion detected", 4.0, 1024),
    # a billion empty iterations: openscad's memory grows slowly; the clock stops it first
    "endless_loop": (
        "for (i = [0:999]) for (j = [0:999]) for (k = [0:999]) if (i < 0) cube(1);",
        "stopped after 1.5 s",
        1.5,
        4096,
    ),
    "ten_million_cubes": (
        "for (i = [0:3199], j = [0:3199]) translate([i * 2, j * 2, 0]) cube(1);",
        "stopped after|memory limit",
        4.0,
        1024,
    ),
    # a tree of 200,000 nodes: openscad's export is quick, reading and building it is not
    "hundred_thousand_cubes": (
        "for (i = [0:99]) for (j = [0:999]) translate([i * 2, j * 2, 0]) cube(1);",
        "stopped after 3 s",
        3.0,
        2048,
    ),
    "billion_facets": ("sphere(r = 10, $fn = 1e9);", "facets|memory limit", 4.0, 1024),
}


@pytest.mark.parametrize("mode", ["auto", "openscad"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_models_fail_cleanly(name: str, mode: str, tmp_path: Path) -> None:
    source, message, timeout, memory_mb = HOSTILE[name]
    folder = _write_model(tmp_path / name, source)
    started = time.monotonic()
    with pytest.raises(RenderFailed, match=message):
        render_model(folder, "main.scad", {}, mode=mode, timeout=timeout, memory_mb=memory_mb)  # type: ignore[arg-type]
    assert time.monotonic() - started < timeout + 2
    after = render_model(_write_model(tmp_path / "next", "cube(2);"), "main.scad", {}, mode=mode)  # type: ignore[arg-type]
    assert after.solid.volume() == pytest.approx(8.0)


def test_passwd_is_not_read(tmp_path: Path) -> None:
    folder = _write_model(tmp_path / "passwd", 'import("/etc/passwd");')
    with pytest.raises(RenderFailed) as caught:
        render_model(folder, "main.scad", {}, mode="auto")
    assert "root:" not in str(caught.value)


def test_sandbox_hides_the_filesystem(tmp_path: Path) -> None:
    if not sandbox_available():
        pytest.skip("bubblewrap is not usable here")
    (tmp_path / "outside.scad").write_text("cube(50);")
    source = f"include <{tmp_path / 'outside.scad'}>\ncube(1);"
    folder = _write_model(tmp_path / "probe", source)
    rendered = render_model(folder, "main.scad", {}, mode="openscad")
    assert rendered.solid.volume() == pytest.approx(1.0)  # the file beside it was not seen


def test_limits_hold_without_prlimit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fabflow.production.scad import openscad

    real_which = shutil.which
    monkeypatch.setattr(
        openscad.shutil, "which", lambda name: None if name == "prlimit" else real_which(name)
    )
    folder = _write_model(tmp_path / "facets", "sphere(r = 10, $fn = 1e9);")
    with pytest.raises(RenderFailed, match="memory limit"):
        render_model(folder, "main.scad", {}, mode="openscad", memory_mb=1024)


def test_main_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = _write_model(tmp_path / "inner", "cube(1);")
    (tmp_path / "evil.scad").write_text("cube(9);")
    with pytest.raises(RenderFailed, match="outside"):
        render_model(folder, "../evil.scad", {})


@pytest.mark.parametrize("mode", ["auto", "openscad"])
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("cube(1);\nsphere(2)\ncube(", r"syntax error in file main\.scad, line 4"),
        ('assert(false, "size must be positive"); cube(1);', "size must be positive"),
        ("nosuch();", r"empty; WARNING: Ignoring unknown module 'nosuch' in file main\.scad"),
        ("square(3);", "2D|not a 3D object"),
    ],
)
def test_model_errors_name_the_reason_and_line(
    source: str, message: str, mode: str, tmp_path: Path
) -> None:
    folder = _write_model(tmp_path / "broken", source)
    with pytest.raises(RenderFailed, match=message) as caught:
        render_model(folder, "main.scad", {}, mode=mode)  # type: ignore[arg-type]
    assert "fabflow-scad-" not in str(caught.value)  # the private folder is not shown


@pytest.mark.parametrize(
    "source",
    [
        "sphere(r = 10, $fn = 1e9);",
        "linear_extrude(height = 5, twist = 90, $fn = 1e9) square(3);",
        "linear_extrude(3) offset(r = 1, $fn = 1e9) square(3);",
        "linear_extrude(height = 5, slices = 1e9) square(3);",
        "linear_extrude(height = 5, scale = [1, 2], $fn = 1e9) square(3);",
        "rotate_extrude($fn = 1e9) translate([5, 0]) square(1);",
        'linear_extrude(1) text("ab", $fn = 1e9);',
        "minkowski() { sphere(5, $fn = 2000); sphere(5, $fn = 2000); }",
    ],
)
def test_huge_resolutions_are_refused_before_building(source: str, tmp_path: Path) -> None:
    folder = _write_model(tmp_path / "huge", source)
    started = time.monotonic()
    with pytest.raises(RenderFailed, match="facets; the limit is 5,000,000"):
        render_model(folder, "main.scad", {}, mode="auto", memory_mb=1024)
    assert time.monotonic() - started < 2


def test_a_model_that_echoes_without_end_is_stopped(tmp_path: Path) -> None:
    source = 'for (i = [0:999]) for (j = [0:999]) for (k = [0:999]) echo("spam spam spam");'
    folder = _write_model(tmp_path / "echo", source)
    started = time.monotonic()
    with pytest.raises(RenderFailed, match=r"stopped after 2 s|memory limit|size limit"):
        render_model(folder, "main.scad", {}, mode="auto", timeout=2.0)
    assert time.monotonic() - started < 4


def test_a_3mf_that_unpacks_too_large_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from fabflow.production.scad import imports

    monkeypatch.setattr(imports, "MAX_IMPORT_BYTES", 1 << 20)
    folder = _write_model(tmp_path / "bomb", 'import("bomb.3mf");')
    with zipfile.ZipFile(folder / "bomb.3mf", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", b"\0" * (2 << 20))
    assert (folder / "bomb.3mf").stat().st_size < 100_000
    with pytest.raises(RenderFailed, match="larger than 1 MB"):
        render_model(folder, "main.scad", {}, mode="auto")
