"""PNG thumbnails of parts, rendered on the CPU with numpy: no display, no GPU, no OpenGL.

An orthographic three-quarter view, flat Lambert shading and a z-buffer. Rasterising is
vectorised over scanline spans: every (triangle, pixel row) pair gets its first and last covered
column at once, so the work follows the pixels covered, not the triangles' bounding boxes
(long thin triangles, common on flat faces, cost no more than small ones).
The image is drawn at twice the size and scaled down, which smooths the edges.
"""

from __future__ import annotations

import io
import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from fabflow.production.mesh import TriMesh

BACKGROUND = (246, 247, 249)
BASE_COLOUR = np.array([64, 128, 200], dtype=np.float32)
_LIGHT = np.array([-0.35, 0.55, 0.75], dtype=np.float32) / np.float32(
    math.sqrt(0.35**2 + 0.55**2 + 0.75**2)
)
_AMBIENT = 0.3
_SUPERSAMPLE = 2

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


def render_png(
    mesh: TriMesh, size: int = 256, azimuth: float = -35, elevation: float = 30
) -> bytes:
    """A ``size`` x ``size`` PNG of the part, seen from the front-left and above."""
    pixels = render(mesh, size * _SUPERSAMPLE, azimuth, elevation)
    image = Image.fromarray(pixels, "RGB").resize((size, size), Image.Resampling.BOX)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def render(mesh: TriMesh, size: int, azimuth: float, elevation: float) -> NDArray[np.uint8]:
    """The (size, size, 3) image of the part."""
    if not len(mesh.faces):
        return np.broadcast_to(np.array(BACKGROUND, np.uint8), (size, size, 3)).copy()
    corners = _to_view(mesh.vertices, azimuth, elevation)[mesh.faces]
    normals = _normals(corners)
    facing = normals[:, 2] > 0  # back faces are hidden behind front faces of a solid
    corners, normals = corners[facing], normals[facing]
    shade = _AMBIENT + (1 - _AMBIENT) * np.clip(normals @ _LIGHT, 0, 1)
    # Each triangle's colour, then the background's last: every pixel picks one by index.
    palette = np.empty((len(shade) + 1, 3), dtype=np.uint8)
    palette[:-1] = shade[:, None] * BASE_COLOUR
    palette[-1] = BACKGROUND
    pixel, triangle = _rasterise(_fit(corners, size), size)
    # Painting three bytes per covered pixel and filling three per background one cost more
    # than the depth test: one index per pixel instead, then one gather of whole rows.
    winner = np.full(size * size, len(shade), dtype=np.int32)
    winner[pixel] = triangle
    return np.take(palette, winner, axis=0).reshape(size, size, 3)


def _to_view(vertices: F32, azimuth: float, elevation: float) -> F32:
    """Rotate so the camera looks down -z with the part's z axis pointing up the screen."""
    a, e = math.radians(azimuth), math.radians(90 - elevation)
    spin = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, math.cos(e), math.sin(e)], [0, -math.sin(e), math.cos(e)]])
    rotation = (tilt @ spin).astype(np.float32)
    return np.asarray(np.asarray(vertices, dtype=np.float32) @ rotation.T, dtype=np.float32)


def _normals(corners: F32) -> F32:
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.asarray(normals / np.maximum(length, 1e-12), dtype=np.float32)


def _fit(corners: F32, size: int) -> F32:
    """Scale x, y into pixels with a margin (y down); z stays the depth (larger is nearer)."""
    lo = corners.reshape(-1, 3).min(axis=0)
    hi = corners.reshape(-1, 3).max(axis=0)
    span = max(float(hi[0] - lo[0]), float(hi[1] - lo[1]), 1e-9)
    scale = 0.9 * size / span
    centre = (lo + hi) / 2
    screen = np.empty_like(corners)
    screen[..., 0] = (corners[..., 0] - centre[0]) * scale + size / 2
    screen[..., 1] = size / 2 - (corners[..., 1] - centre[1]) * scale
    screen[..., 2] = corners[..., 2]
    return screen


def _rasterise(screen: F32, size: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each covered pixel, the nearest triangle: (flat pixel indices, triangle indices)."""
    row_tri, row_y = _rows(screen, size)
    start, stop = _spans(screen[row_tri], row_y + np.float32(0.5), size)
    count = np.maximum(stop - start + 1, 0)
    # Each triangle's plane once, each span's depth at its first pixel once: per pixel, the
    # work left is one multiply-add (gathering the triangle's corners for every pixel cost
    # more than the rest of the preview together).
    slope_x, slope_y, offset = _planes(screen)
    span_slope = slope_x[row_tri]
    span_depth = span_slope * (start + 0.5) + slope_y[row_tri] * (row_y + 0.5) + offset[row_tri]
    span = np.repeat(np.arange(len(count)), count)
    step = _ranks(count)
    depth = span_slope[span] * step + span_depth[span]
    pixel = (row_y * size + start)[span] + step
    nearest = np.full(size * size, -np.inf, dtype=np.float64)
    np.maximum.at(nearest, pixel, depth)
    wins = depth >= nearest[pixel]
    return pixel[wins], row_tri[span[wins]]


def _ranks(count: NDArray[np.int64]) -> NDArray[np.int64]:
    """0, 1, .. count[i]-1 for each i, concatenated."""
    total = int(count.sum())
    starts = np.cumsum(count) - count
    return np.arange(total) - np.repeat(starts, count)


def _rows(screen: F32, size: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every (triangle, pixel row) pair whose row centre the triangle may cover."""
    # Pixel centres sit at i + 0.5, so a triangle covers rows ceil(min - 0.5)..floor(max - 0.5).
    first = np.maximum(np.ceil(screen[:, :, 1].min(axis=1) - 0.5), 0).astype(np.int64)
    last = np.minimum(np.floor(screen[:, :, 1].max(axis=1) - 0.5), size - 1).astype(np.int64)
    count = np.maximum(last - first + 1, 0)
    row_tri = np.repeat(np.arange(len(screen)), count)
    return row_tri, first[row_tri] + _ranks(count)


def _spans(corners: F32, y: F32, size: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """First and last pixel column whose centre lies inside the triangle on each row."""
    crossings = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, j in ((0, 1), (1, 2), (2, 0)):
            xi, yi = corners[:, i, 0], corners[:, i, 1]
            t = (y - yi) / (corners[:, j, 1] - yi)  # a level edge: inf or NaN, never in 0..1
            x = xi + t * (corners[:, j, 0] - xi)
            crossings.append(np.where((t >= 0) & (t <= 1), x, np.float32(np.nan)))
    # fmin and fmax skip NaN: the edges that do not cross the row.
    low = np.fmin(np.fmin(crossings[0], crossings[1]), crossings[2])
    high = np.fmax(np.fmax(crossings[0], crossings[1]), crossings[2])
    valid = ~np.isnan(low)
    start = np.where(valid, np.maximum(np.ceil(low - 0.5), 0), 1).astype(np.int64)
    stop = np.where(valid, np.minimum(np.floor(high - 0.5), size - 1), 0).astype(np.int64)
    return start, stop


def _planes(screen: F32) -> tuple[F64, F64, F64]:
    """Each triangle's plane as ``depth = slope_x * x + slope_y * y + offset`` (float64: the
    offset subtracts large products, which float32 would round away)."""
    c = screen.astype(np.float64)
    e1, e2 = c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    area = np.where(np.abs(area) < 1e-9, 1e-9, area)
    slope_x = (e1[:, 2] * e2[:, 1] - e2[:, 2] * e1[:, 1]) / area
    slope_y = (e1[:, 0] * e2[:, 2] - e2[:, 0] * e1[:, 2]) / area
    offset = c[:, 0, 2] - slope_x * c[:, 0, 0] - slope_y * c[:, 0, 1]
    return slope_x, slope_y, offset
