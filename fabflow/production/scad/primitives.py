"""OpenSCAD's primitives rebuilt vertex for vertex, so that volumes agree with the program's.

A circle of radius r has ``fragments(r, $fn, $fa, $fs)`` corners starting on +X; a sphere is
``(fragments + 1) // 2`` such rings at polar angles ``180 * (i + 0.5) / rings``; a cylinder is
two rings. All three are convex, so each is the convex hull of its corners, which is the solid
OpenSCAD builds from the same corners.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from manifold3d import CrossSection, FillRule, Manifold, Mesh64, triangulate
from numpy.typing import NDArray

GRID_FINE = 0.00000095367431640625  # OpenSCAD's grid.h: below this a radius is "zero"
Points = NDArray[np.float64]


class Unsupported(Exception):
    """A node the fast path does not build; the whole model goes to the reference renderer."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def fragments(r: float, fn: float, fs: float, fa: float) -> int:
    """Corners of a circle of radius r: OpenSCAD's ``Calc::get_fragments_from_r``."""
    if r < GRID_FINE or math.isinf(fn) or math.isnan(fn):
        return 3
    if fn > 0.0:
        return int(fn if fn >= 3 else 3)
    return math.ceil(max(min(360.0 / fa, r * 2 * math.pi / fs), 5))


def _cos_sin_degrees(angles: NDArray[np.float64]) -> tuple[Points, Points]:
    # OpenSCAD's sin_degrees/cos_degrees are exact at multiples of 90 degrees; numpy's
    # cos(pi/2) is 6e-17, which moves a corner off its axis.
    radians = np.radians(angles)
    cos, sin = np.cos(radians), np.sin(radians)
    quarter = np.isclose(np.mod(angles, 90.0), 0.0, atol=1e-12)
    cos[quarter] = np.round(cos[quarter])
    sin[quarter] = np.round(sin[quarter])
    return cos, sin


def circle_points(r: float, count: int) -> Points:
    """``count`` corners of a circle, the first on +X, counter-clockwise."""
    cos, sin = _cos_sin_degrees(360.0 * np.arange(count) / count)
    return np.column_stack([r * cos, r * sin])


def circle(r: float, fn: float, fs: float, fa: float) -> CrossSection | None:
    if r <= 0 or not math.isfinite(r):
        return None
    return CrossSection([circle_points(r, fragments(r, fn, fs, fa))])


def square(size: Sequence[float], center: bool) -> CrossSection | None:
    x, y = size
    if x <= 0 or y <= 0 or not (math.isfinite(x) and math.isfinite(y)):
        return None
    return CrossSection.square((x, y), center)


def cube(size: Sequence[float], center: bool) -> Manifold | None:
    x, y, z = size
    if min(x, y, z) <= 0 or not all(map(math.isfinite, size)):
        return None
    return Manifold.cube((x, y, z), center)


def sphere(r: float, fn: float, fs: float, fa: float) -> Manifold | None:
    if r <= 0 or not math.isfinite(r):
        return None
    count = fragments(r, fn, fs, fa)
    rings = (count + 1) // 2
    cos, sin = _cos_sin_degrees(180.0 * (np.arange(rings) + 0.5) / rings)
    layers = [
        np.column_stack([circle_points(r * s, count), np.full(count, r * c)])
        for c, s in zip(cos, sin, strict=True)
    ]
    return Manifold.hull_points(np.concatenate(layers))


def cylinder(
    h: float, r1: float, r2: float, center: bool, fn: float, fs: float, fa: float
) -> Manifold | None:
    if not (h > 0 and math.isfinite(h) and r1 >= 0 and r2 >= 0 and max(r1, r2) > 0):
        return None
    if not (math.isfinite(r1) and math.isfinite(r2)):
        return None
    count = fragments(max(r1, r2), fn, fs, fa)
    z1, z2 = (-h / 2, h / 2) if center else (0.0, h)
    layers = []
    for r, z in ((r1, z1), (r2, z2)):
        ring = circle_points(r, count) if r > 0 else np.zeros((1, 2))
        layers.append(np.column_stack([ring, np.full(len(ring), z)]))
    return Manifold.hull_points(np.concatenate(layers))


def polygon(points: Points, paths: Sequence[Sequence[int]] | None) -> CrossSection | None:
    """OpenSCAD fills a polygon's paths even-odd: a path inside another is a hole."""
    if len(points) == 0:
        return None
    contours = [points] if paths is None else [points[list(path)] for path in paths]
    contours = [c for c in contours if len(c) >= 3]
    if not contours:
        return None
    return CrossSection(contours, FillRule.EvenOdd)


def polyhedron(points: Points, faces: Sequence[Sequence[int]]) -> Manifold | None:
    """A polyhedron from OpenSCAD's faces (clockwise seen from outside)."""
    triangles: list[tuple[int, int, int]] = []
    for face in faces:
        loop = [int(i) for i in reversed(face)]  # manifold3d wants counter-clockwise
        if min(loop, default=0) < 0 or max(loop, default=0) >= len(points):
            raise Unsupported("polyhedron (face index out of range)")
        triangles += triangulate_face(points, loop)
    if not triangles:
        return None
    solid = mesh_solid(np.asarray(points, dtype=np.float64), np.asarray(triangles))
    if solid is None:
        raise Unsupported("polyhedron (not a closed solid)")
    return solid


def mesh_solid(vertices: Points, triangles: NDArray[np.integer]) -> Manifold | None:
    """A Manifold from indexed triangles in double precision; None unless closed."""
    mesh = Mesh64(
        vert_properties=np.ascontiguousarray(vertices, dtype=np.float64),
        tri_verts=np.ascontiguousarray(triangles, dtype=np.uint64),
    )
    solid = Manifold(mesh)
    return solid if solid.status().name == "NoError" else None


def triangulate_face(points: Points, loop: list[int]) -> list[tuple[int, int, int]]:
    """Triangles of one planar face given as a loop of point indices, wound as the loop."""
    if len(loop) < 3:
        return []
    if len(loop) == 3:
        return [(loop[0], loop[1], loop[2])]
    corners = points[loop]
    normal = np.zeros(3)
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):  # Newell's method
        normal += np.cross(a, b)
    axis = int(np.argmax(np.abs(normal)))
    flat = np.delete(corners, axis, axis=1)
    # Dropping y mirrors the face (x, z is left-handed), so its sign counts the other way.
    if normal[axis] * (-1 if axis == 1 else 1) < 0:
        flat = flat[:, ::-1]
    local = triangulate([flat])
    if len(local) != len(loop) - 2:
        local = np.array([(0, i, i + 1) for i in range(1, len(loop) - 1)])
    return [(loop[a], loop[b], loop[c]) for a, b, c in np.asarray(local)]
