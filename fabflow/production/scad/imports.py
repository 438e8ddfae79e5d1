"""``import()`` on the fast path: meshes read from the model's own folder, nothing else.

The ``.csg`` file names an imported file relative to the main ``.scad`` file. The name is
resolved (symbolic links included) and refused unless it lies inside the model's private
folder: ``import("/etc/passwd")`` fails here without the file being opened. STL and 3MF load
through trimesh, OFF (faces of any size) here; SVG and DXF, whose curves and units OpenSCAD
interprets its own way, go to the reference renderer.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import trimesh
from manifold3d import Manifold
from numpy.typing import NDArray

from fabflow.errors import RenderFailed
from fabflow.production.scad.primitives import Points, Unsupported, mesh_solid, triangulate_face

MAX_IMPORT_BYTES = 256 << 20
MESH_SUFFIXES = (".stl", ".off", ".3mf")  # what openscad 2021 itself imports as meshes


def resolve_inside(folder: Path, name: str, base: Path | None = None) -> Path:
    """``name`` (relative to ``base``, default ``folder``) as a path inside ``folder``;
    RenderFailed when it points outside."""
    root = folder.resolve()
    path = ((base or folder).resolve() / name).resolve()
    if not path.is_relative_to(root):
        raise RenderFailed(f"import({name!r}) reads outside the product's folder")
    return path


def import_mesh(folder: Path, name: str, base: Path | None = None) -> Manifold | None:
    """The solid in a mesh file of the model's folder (``name`` relative to ``base``)."""
    path = resolve_inside(folder, name, base)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise Unsupported(f"import of {suffix or 'a file without suffix'}")
    if not path.is_file():
        raise RenderFailed(f"import({name!r}): no such file in the product")
    if _unpacked_size(path) > MAX_IMPORT_BYTES:
        # read in this process: a zip bomb in a 3MF must not reach trimesh
        raise RenderFailed(f"import({name!r}): larger than {MAX_IMPORT_BYTES >> 20} MB")
    try:
        vertices, triangles = _read_off(path) if suffix == ".off" else _read_trimesh(path)
    except (ValueError, IndexError) as exc:
        raise RenderFailed(f"import({name!r}): {exc}") from exc
    if len(triangles) == 0:
        return None
    solid = mesh_solid(*_outward(*_merged(vertices, triangles)))
    if solid is None:
        raise Unsupported(f"import of {path.name} (not a closed solid)")
    return solid


def _unpacked_size(path: Path) -> int:
    if path.suffix.lower() != ".3mf":
        return path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise RenderFailed(f"import({path.name!r}): not a 3MF archive") from exc


def _read_trimesh(path: Path) -> tuple[Points, NDArray[np.int64]]:
    try:
        loaded: trimesh.Trimesh = trimesh.load(path, force="mesh", process=False)  # type: ignore[assignment]
    except Exception as exc:  # trimesh raises many types for a bad file
        raise ValueError(str(exc)) from exc
    return np.asarray(loaded.vertices, dtype=np.float64), np.asarray(loaded.faces, np.int64)


def _read_off(path: Path) -> tuple[Points, NDArray[np.int64]]:
    """An OFF file; its faces may have any number of corners (trimesh's reader fails on
    those with numpy 2)."""
    lines = [line.split("#")[0].split() for line in path.read_text().splitlines()]
    tokens = [line for line in lines if line]
    header = tokens.pop(0)
    if not header[0].endswith("OFF"):
        raise ValueError("not an OFF file")
    counts = header[1:] if len(header) > 1 else tokens.pop(0)
    vertex_count, face_count = int(counts[0]), int(counts[1])
    vertices = np.asarray([row[:3] for row in tokens[:vertex_count]], dtype=np.float64)
    triangles: list[tuple[int, int, int]] = []
    for row in tokens[vertex_count : vertex_count + face_count]:
        loop = [int(i) for i in row[1 : 1 + int(row[0])]]
        triangles += triangulate_face(vertices, loop)
    return vertices, np.asarray(triangles, dtype=np.int64).reshape(-1, 3)


def _merged(vertices: Points, triangles: NDArray[np.int64]) -> tuple[Points, NDArray[np.int64]]:
    # STL repeats each corner per triangle: merge exact duplicates into shared vertices
    unique, index = np.unique(vertices, axis=0, return_inverse=True)
    return unique, index.reshape(-1)[triangles]


def _outward(vertices: Points, triangles: NDArray[np.int64]) -> tuple[Points, NDArray[np.int64]]:
    """Triangles facing out: a file wound the other way has a negative signed volume."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    signed = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())
    return vertices, triangles if signed >= 0 else triangles[:, ::-1]
