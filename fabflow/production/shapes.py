"""Small 2D building blocks the products share."""

from __future__ import annotations

import numpy as np
from manifold3d import CrossSection, Error, JoinType, Manifold, Mesh64, triangulate
from numpy.typing import NDArray

CIRCLE_SEGMENTS = 64  # smooth at the sizes we print, cheap to boolean


def rounded_rectangle(width: float, height: float, radius: float) -> CrossSection:
    """A width x height rectangle centred on the origin, corners rounded to ``radius``."""
    radius = max(0.0, min(radius, width / 2 - 1e-3, height / 2 - 1e-3))
    if radius <= 0:
        return CrossSection.square((width, height), center=True)
    core = CrossSection.square((width - 2 * radius, height - 2 * radius), center=True)
    return core.offset(radius, JoinType.Round, circular_segments=CIRCLE_SEGMENTS)


def inset(shape: CrossSection, distance: float) -> CrossSection:
    """``shape`` shrunk by ``distance`` all round (rounded corners stay concentric)."""
    return shape.offset(-distance, JoinType.Round, circular_segments=CIRCLE_SEGMENTS)


def raised(
    base: CrossSection, base_height: float, top: CrossSection, top_height: float
) -> Manifold:
    """``base`` extruded to ``base_height`` with ``top`` standing ``top_height`` above it.

    The same solid as the union of two extrusions, but assembled directly from the outlines:
    a triangulation instead of a 3D boolean in which every letter wall crosses the plate's top
    face. ``top`` must lie strictly inside ``base``; if the assembled mesh is not a valid
    solid anyway, the boolean union is the fallback.
    """
    lower = [np.asarray(p, dtype=np.float64) for p in base.to_polygons()]
    upper = [np.asarray(p, dtype=np.float64) for p in top.to_polygons()]
    if not upper:
        return base.extrude(base_height)
    n_low, n_up = sum(len(p) for p in lower), sum(len(p) for p in upper)
    low_xy, up_xy = np.concatenate(lower), np.concatenate(upper)
    z0, z1, z2 = 0.0, base_height, base_height + top_height
    vertices = np.concatenate([_at(low_xy, z0), _at(low_xy, z1), _at(up_xy, z1), _at(up_xy, z2)])
    floor_hi, top_lo, top_hi = n_low, 2 * n_low, 2 * n_low + n_up
    faces = [
        np.asarray(triangulate(lower), dtype=np.int64)[:, ::-1],  # bottom, facing down
        _shelf(lower, upper, floor_hi, top_lo),
        np.asarray(triangulate(upper), dtype=np.int64) + top_hi,
        _walls(lower, 0, floor_hi),
        _walls(upper, top_lo, top_hi),
    ]
    solid = Manifold(Mesh64(vert_properties=vertices, tri_verts=np.concatenate(faces)))
    if solid.status() != Error.NoError or solid.is_empty():
        return base.extrude(base_height) + top.extrude(top_height).translate((0, 0, base_height))
    return solid


def _at(xy: NDArray[np.float64], z: float) -> NDArray[np.float64]:
    return np.column_stack([xy, np.full(len(xy), z)])


def _shelf(
    lower: list[NDArray[np.float64]], upper: list[NDArray[np.float64]], low_at: int, up_at: int
) -> NDArray[np.int64]:
    """The base's top face with the upper outline cut out (upper contours reversed = holes)."""
    reversed_upper = [p[::-1] for p in upper]
    tris = np.asarray(triangulate(lower + reversed_upper), dtype=np.int64)
    n_low = sum(len(p) for p in lower)
    # Map indices of the reversed contours back to the upper vertices they came from.
    index = [np.arange(n_low) + low_at]
    start = up_at
    for p in upper:
        index.append(start + np.arange(len(p))[::-1])
        start += len(p)
    return np.concatenate(index)[tris]


def _walls(contours: list[NDArray[np.float64]], low_at: int, high_at: int) -> NDArray[np.int64]:
    """Side faces between two copies of the contours; outward because contours run CCW."""
    quads = []
    start = 0
    for p in contours:
        a = np.arange(start, start + len(p))
        b = np.roll(a, -1)
        quads.append(
            np.concatenate(
                [
                    np.column_stack([a + low_at, b + low_at, b + high_at]),
                    np.column_stack([a + low_at, b + high_at, a + high_at]),
                ]
            )
        )
        start += len(p)
    return np.concatenate(quads)
