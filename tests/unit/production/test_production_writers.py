"""Writers: every format opens in trimesh with the same triangles and volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from manifold3d import Manifold

from fabflow.production.mesh import TriMesh, from_manifold
from fabflow.production.textfmt import format_rows
from fabflow.production.writers import FORMATS, STL_HEADER, write

TRIMESH_TYPES = {"stl": "stl", "obj": "obj", "3mf": "3mf", "ply": "ply", "glb": "glb"}
TRIMESH_TYPES["stl-ascii"] = "stl"


def part() -> TriMesh:
    return from_manifold(Manifold.sphere(10, 48) - Manifold.cube((8, 8, 8)).translate((-2, -2, 4)))


@pytest.mark.parametrize("file_format", sorted(FORMATS))
def test_each_format_reads_back_with_the_same_triangles_and_volume(
    tmp_path: Path, file_format: str
) -> None:
    mesh = part()
    path = tmp_path / f"part.{FORMATS[file_format].extension}"
    write(mesh, path, file_format, name="part")
    loaded: Any = trimesh.load(path, file_type=TRIMESH_TYPES[file_format], force="mesh")
    # glTF is in metres by definition: the GLB writer scales millimetres by 1/1000.
    scale = 1e-3 if file_format == "glb" else 1.0
    expected = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).volume * scale**3
    assert len(loaded.faces) == len(mesh.faces)
    assert loaded.is_watertight
    assert loaded.volume == pytest.approx(expected, rel=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_binary_stl_has_the_exact_size_and_a_header_that_is_not_ascii(tmp_path: Path) -> None:
    mesh = part()
    path = tmp_path / "part.stl"
    write(mesh, path, "stl")
    data = path.read_bytes()
    assert len(data) == 84 + 50 * len(mesh.faces)
    assert not data[:5].lower().startswith(b"solid")
    assert data[:80] == STL_HEADER
    assert int.from_bytes(data[80:84], "little") == len(mesh.faces)


@pytest.mark.parametrize("file_format", sorted(FORMATS))
def test_the_same_mesh_gives_the_same_bytes(tmp_path: Path, file_format: str) -> None:
    mesh = part()
    first, second = tmp_path / "a", tmp_path / "b"
    write(mesh, first, file_format)
    write(mesh, second, file_format)
    assert first.read_bytes() == second.read_bytes()


def test_binary_stl_normals_point_outwards(tmp_path: Path) -> None:
    mesh = from_manifold(Manifold.cube((2, 2, 2), center=True))
    path = tmp_path / "cube.stl"
    write(mesh, path, "stl")
    layout = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
    records = np.frombuffer(path.read_bytes()[84:], dtype=layout)
    normals, centres = records["normal"], records["corners"].mean(axis=1)
    assert np.all(np.einsum("ij,ij->i", normals, centres) > 0)


@pytest.mark.parametrize(
    ("values", "decimals", "expected"),
    [
        ([[0.0, -0.0, 1.5]], 4, b"v 0 0 1.5\n"),
        ([[-12.34567, 100.0, 0.0001]], 4, b"v -12.3457 100 0.0001\n"),
        ([[-0.00001, 3.25, 1234567.0]], 4, b"v 0 3.25 1234567\n"),
        ([[1, 22, 333], [4000, 5, 60]], 0, b"v 1 22 333\nv 4000 5 60\n"),
    ],
)
def test_numbers_are_written_like_g_without_trailing_zeros(
    values: list[list[float]], decimals: int, expected: bytes
) -> None:
    array = np.array(values)
    assert format_rows(array, [b"v ", b" ", b" ", b"\n"], decimals) == expected


def test_formatted_numbers_parse_back_to_the_rounded_values() -> None:
    values = np.random.default_rng(7).uniform(-500, 500, (1000, 3))
    text = format_rows(values, [b"", b",", b",", b"\n"], 5)
    parsed = np.array([line.split(b",") for line in text.splitlines()], dtype=np.float64)
    assert np.abs(parsed - values).max() <= 0.5e-5 + 1e-9
