"""``linear_extrude`` with twist or slices, triangulated the way OpenSCAD 2021 does it.

Between two slices each edge of the outline sweeps a twisted quad, which has no flat
triangulation: the diagonal chosen bulges the side in or out. manifold3d always picks the same
diagonal, OpenSCAD the shorter one (``add_slice`` in ``GeometryEvaluator.cc``), and on a
twisted bar the two differ by several percent of volume. So the mesh is built here, slice by
slice, with OpenSCAD's rule, and handed to manifold3d as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from manifold3d import CrossSection, Manifold, triangulate
from numpy.typing import NDArray

from fabflow.production.scad.primitives import Unsupported, mesh_solid

_Array = NDArray[np.float64]


def twisted_extrude(
    shape: CrossSection, height: float, twist: float, slices: int, scale: Sequence[float]
) -> Manifold:
    """The extrusion from z = 0 to ``height``; the top turned by ``-twist`` degrees (OpenSCAD
    twists clockwise) and scaled by ``scale``."""
    outlines = [np.asarray(c, dtype=np.float64) for c in shape.to_polygons()]
    if min(scale) <= 0:
        return Manifold.extrude(shape, height, slices - 1, -twist, (scale[0], scale[1]))
    sizes = [len(o) for o in outlines]
    base = np.concatenate(outlines)
    levels = [_level(base, twist, scale, j / slices) for j in range(slices + 1)]
    vertices = np.concatenate(
        [
            np.column_stack([lv, np.full(len(lv), height * j / slices)])
            for j, lv in enumerate(levels)
        ]
    )
    count = len(base)
    caps = np.asarray(triangulate(outlines), dtype=np.int64).reshape(-1, 3)
    triangles = [caps[:, ::-1], caps + slices * count]
    for j in range(slices):
        triangles.append(_sides(levels[j], levels[j + 1], sizes, j * count, count, twist))
    solid = mesh_solid(vertices, np.concatenate(triangles))
    if solid is None:
        raise Unsupported("linear_extrude (twisted sides cross)")
    return solid


def _level(base: _Array, twist: float, scale: Sequence[float], t: float) -> _Array:
    angle = math.radians(-twist * t)
    cos, sin = math.cos(angle), math.sin(angle)
    rotated: _Array = base @ np.array([[cos, sin], [-sin, cos]])
    scaled: _Array = rotated * np.array([1 - (1 - scale[0]) * t, 1 - (1 - scale[1]) * t])
    return scaled


def _sides(
    lower: _Array, upper: _Array, sizes: list[int], start: int, count: int, twist: float
) -> NDArray[np.int64]:
    rows: list[tuple[int, int, int]] = []
    back_twist = twist <= 0  # OpenSCAD's rot2 <= rot1, with rot = twist * j / slices
    offset = 0
    for size in sizes:
        ring = np.arange(offset, offset + size)
        positive = _area(lower[ring]) > 0
        flip = (not positive) != back_twist
        for i in range(size):
            p, c = ring[i - 1], ring[i]
            first = _shorter_first(lower[p] - upper[c], lower[c] - upper[p], flip)
            p1, c1, p2, c2 = start + p, start + c, start + count + p, start + count + c
            if first:
                rows += [(p1, c1, c2), (c2, p2, p1)]
            else:
                rows += [(p1, c1, p2), (p2, c1, c2)]
        offset += size
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _shorter_first(d1: _Array, d2: _Array, flip: bool) -> bool:
    """OpenSCAD's ``sgn_vdiff``: lengths within 10 ppm count as equal."""
    l1, l2 = float(np.hypot(*d1)), float(np.hypot(*d2))
    if 2 * abs(l1 - l2) * 1e5 > l1 + l2:
        return l1 < l2
    return not flip


def _area(ring: _Array) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2
