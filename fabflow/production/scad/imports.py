"""``import()`` on the fast path: meshes read from the model's own folder, nothing else.

The ``.csg`` file names an imported file relative to the main ``.scad`` file. The name is
resolved (symbolic links included) and refused unless it lies inside the model's private
folder: ``import("/etc/passwd")`` fails here without the file being opened. STL, OFF and 3MF
load through trimesh; SVG and DXF, whose curves and units OpenSCAD interprets its own way,
go to the reference renderer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from manifold3d import Manifold

from fabflow.errors import RenderFailed
from fabflow.production.scad.primitives import Unsupported, mesh_solid

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
    try:
        loaded: trimesh.Trimesh = trimesh.load(path, force="mesh", process=False)  # type: ignore[assignment]
    except Exception as exc:  # trimesh raises many types for a bad file
        raise RenderFailed(f"import({name!r}): {exc}") from exc
    if len(loaded.faces) == 0:
        return None
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    # STL repeats each corner per triangle: merge exact duplicates into shared vertices
    unique, index = np.unique(vertices, axis=0, return_inverse=True)
    triangles = index.reshape(-1)[np.asarray(loaded.faces)]
    solid = mesh_solid(unique, triangles)
    if solid is None:
        raise Unsupported(f"import of {path.name} (not a closed solid)")
    return solid
