"""Triangle meshes and the checks a mesh must pass before it becomes a production file.

A printable part is a closed, consistently oriented, single-body solid with positive volume.
The checks weld vertices by position first: a file format without indices (STL) only keeps
positions, so that is what a slicer will see. Everything is vectorised numpy: no Python loop
runs per triangle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from manifold3d import Manifold
from numpy.typing import NDArray

from fabflow.errors import MeshCheckFailed as MeshCheckFailed  # re-exported for callers

Float32Array = NDArray[np.float32]
IndexArray = NDArray[np.int64]
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True)
class TriMesh:
    """Vertices (n, 3) float32 in millimetres and faces (m, 3) vertex indices, CCW outward."""

    vertices: Float32Array
    faces: NDArray[np.integer]

    @property
    def triangles(self) -> Float32Array:
        """(m, 3, 3) corner coordinates of every face."""
        return np.take(self.vertices, self.faces, axis=0)  # cheaper than fancy indexing


@dataclass(frozen=True)
class MeshStats:
    """What the order's file record says about a checked part."""

    triangles: int
    volume_mm3: float
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def from_manifold(solid: Manifold) -> TriMesh:
    """The triangles of a manifold3d solid (positions only)."""
    mesh = solid.to_mesh()
    vertices = np.ascontiguousarray(np.asarray(mesh.vert_properties)[:, :3], dtype=np.float32)
    faces = np.ascontiguousarray(np.asarray(mesh.tri_verts), dtype=np.int64)
    return TriMesh(vertices, faces)


def snapped(mesh: TriMesh, decimals: int = 8) -> TriMesh:
    """Vertices rounded to a 10^-decimals mm grid.

    Booleans leave vertices a hair apart (1e-10 mm next to 0). They are distinct to an exact
    check, but a reader that welds with a small tolerance (trimesh: 1e-8) merges them and
    finds the part broken. Snapping first makes such readers see the mesh the checks saw.
    """
    vertices = np.round(mesh.vertices.astype(np.float64), decimals).astype(np.float32)
    return TriMesh(vertices, mesh.faces)


def without_slivers(mesh: TriMesh) -> TriMesh:
    """The mesh welded, without the triangles that welding left with a repeated corner.

    A boolean can leave an edge shorter than float32 can tell apart: two vertices 1e-8 mm
    apart (seen where a ring's engraving crossed the band's edge). Written as float32, its
    ends are one point, and the two slivers along it become triangles with a repeated corner,
    each of their other edges then shared by three triangles. Dropping them collapses the
    edge, as a mesh editor would; they enclose no volume. Whether the result is a printable
    solid is still for ``check`` to say.
    """
    vertices, faces = weld(mesh)
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    return TriMesh(vertices, faces[(a != b) & (b != c) & (c != a)])


def weld(mesh: TriMesh) -> tuple[Float32Array, IndexArray]:
    """Vertices merged by exact position, and the faces re-indexed onto them."""
    # Adding 0.0 turns -0.0 into 0.0, so equal positions have equal bits.
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32) + np.float32(0.0)
    bits = vertices.view(np.uint32).astype(np.uint64)
    # Sorting one 64-bit hash per vertex is cheaper than np.unique(axis=0) on rows.
    key = (bits[:, 0] << np.uint64(32)) ^ (bits[:, 1] * _K1) ^ (bits[:, 2] * _K2)
    order = np.argsort(key, kind="stable")
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    first[1:] = key[order][1:] != key[order][:-1]
    group = np.cumsum(first) - 1
    representative = order[first]
    if not np.array_equal(vertices[order], vertices[representative][group]):
        unique, inverse = np.unique(vertices, axis=0, return_inverse=True)  # hash collision
        return unique, inverse.reshape(-1)[mesh.faces].astype(np.int64)
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = group
    return vertices[representative], inverse[mesh.faces]


def signed_volume(vertices: Float32Array, faces: NDArray[np.integer]) -> float:
    """Volume enclosed by the faces (divergence theorem); negative when they face inwards."""
    tri = vertices[faces].astype(np.float64)
    return float(np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0)


def check(mesh: TriMesh) -> MeshStats:
    """Measure a part and list every reason it is not a printable solid (empty when it is)."""
    if len(mesh.faces) == 0:
        zero = (0.0, 0.0, 0.0)
        return MeshStats(0, 0.0, zero, zero, ["the part has no triangles"])
    vertices, faces = weld(mesh)
    problems = _edge_problems(faces, len(vertices))
    bodies = count_bodies(faces)
    if bodies != 1:
        problems.append(f"it has {bodies} separate bodies, not one")
    volume = signed_volume(vertices, faces)
    if volume <= 0:
        problems.append(f"its volume is not positive ({volume:.3f} mm3)")
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return MeshStats(
        triangles=len(mesh.faces),
        volume_mm3=volume,
        bbox_min=(float(lo[0]), float(lo[1]), float(lo[2])),
        bbox_max=(float(hi[0]), float(hi[1]), float(hi[2])),
        problems=problems,
    )


def check_or_raise(mesh: TriMesh, part: str) -> MeshStats:
    """``check``, raising ``MeshCheckFailed`` when the part is not a printable solid."""
    stats = check(mesh)
    if not stats.ok:
        raise MeshCheckFailed(part, stats.problems)
    return stats


def _directed_edges(faces: IndexArray) -> tuple[IndexArray, IndexArray]:
    start = faces.reshape(-1)
    end = faces[:, [1, 2, 0]].reshape(-1)
    return start, end


def _edge_problems(faces: IndexArray, n_vertices: int) -> list[str]:
    problems: list[str] = []
    degenerate = int(
        np.count_nonzero(
            (faces[:, 0] == faces[:, 1])
            | (faces[:, 1] == faces[:, 2])
            | (faces[:, 0] == faces[:, 2])
        )
    )
    if degenerate:
        problems.append(f"{degenerate} triangles have a repeated corner")
    start, end = _directed_edges(faces)
    counts = _run_lengths(np.sort(np.minimum(start, end) * n_vertices + np.maximum(start, end)))
    if (open_edges := int(np.count_nonzero(counts == 1))) > 0:
        problems.append(f"it is not closed: {open_edges} edges border only one triangle")
    if (crowded := int(np.count_nonzero(counts > 2))) > 0:
        problems.append(f"{crowded} edges are shared by more than two triangles")
    directed = np.sort(start * n_vertices + end)
    if repeated := int(np.count_nonzero(directed[1:] == directed[:-1])):
        problems.append(
            f"it is not consistently oriented: {repeated} edges run the same way in two triangles"
        )
    return problems


def _run_lengths(sorted_keys: IndexArray) -> IndexArray:
    """How often each distinct value occurs in a sorted array."""
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    bounds = np.concatenate(([0], change, [len(sorted_keys)]))
    return np.diff(bounds)


def count_bodies(faces: IndexArray) -> int:
    """Connected components of the faces, two faces joined when they share an edge."""
    n_faces = len(faces)
    if n_faces == 0:
        return 0
    start, end = _directed_edges(faces)
    n_vertices = int(faces.max()) + 1
    key = np.minimum(start, end) * n_vertices + np.maximum(start, end)
    order = np.argsort(key)
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    face_of_edge = order // 3  # edges are laid out face by face
    return _components(n_faces, face_of_edge[:-1][same], face_of_edge[1:][same])


def _components(n: int, a: IndexArray, b: IndexArray) -> int:
    """Number of connected components of a graph with edges (a[i], b[i]).

    Vectorised union-find: hook every root onto the smaller root across each edge, then jump
    pointers until every node points at its root; a few rounds suffice for real meshes.
    """
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            break
        ra, rb = ra[differ], rb[differ]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return int(np.count_nonzero(parent == np.arange(n)))
