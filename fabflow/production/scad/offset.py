"""``offset()`` as OpenSCAD 2021 computes it: Clipper 1's ``ClipperOffset``, step for step.

manifold3d offsets with Clipper 2, whose round joins place a different number of points on
each corner: with OpenSCAD's default resolution (5 segments for a small radius) a rounded
square came out 3 % larger. So the offset outline is built here as Clipper 1 builds it (integer
coordinates at 2^16 per mm, ``DoRound``/``DoMiter``/``DoSquare`` per corner) and only the final
clean-up, a union of the raw outlines with the positive fill rule, is left to manifold3d.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from manifold3d import CrossSection, FillRule
from numpy.typing import NDArray

Join = Literal["round", "miter", "square"]
SCALE = float(1 << 16)  # OpenSCAD's CLIPPER_SCALE
_DEFAULT_ARC_TOLERANCE = 0.25
_MITER_LIMIT = 1e6  # OpenSCAD's OffsetNode: "fixed high value to disable chamfers"
_Point = tuple[float, float]


def clipper_offset(
    shape: CrossSection, delta: float, join: Join, arc_tolerance: float
) -> CrossSection | None:
    """``shape`` grown by ``delta`` mm (shrunk when negative); ``arc_tolerance`` in mm."""
    paths = [_integer_path(np.asarray(c)) for c in shape.to_polygons()]
    d = delta * SCALE
    if abs(d) < 1e-20:
        return shape
    offsetter = _Offsetter(d, join, arc_tolerance * SCALE)
    outlines = [offsetter.path(p) for p in paths if len(p) >= 3]
    outlines = [o for o in outlines if len(o) >= 3]
    if not outlines:
        return None
    result = CrossSection([np.asarray(o) / SCALE for o in outlines], FillRule.Positive)
    return None if result.is_empty() else result


def _integer_path(points: NDArray[np.float64]) -> list[_Point]:
    # fromPolygon2d: IntPoint(v * CLIPPER_SCALE) truncates; AddPath drops repeated points
    path: list[_Point] = []
    for x, y in np.trunc(points * SCALE):
        if not path or path[-1] != (x, y):
            path.append((float(x), float(y)))
    while len(path) > 1 and path[0] == path[-1]:
        path.pop()
    return path


def _round(value: float) -> float:
    """Clipper's Round: halves away from zero."""
    return float(math.floor(value + 0.5) if value >= 0 else math.ceil(value - 0.5))


def _unit_normal(a: _Point, b: _Point) -> _Point:
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0 and dy == 0:
        return (0.0, 0.0)
    f = 1.0 / math.sqrt(dx * dx + dy * dy)
    return (dy * f, -dx * f)


class _Offsetter:
    """``ClipperOffset::DoOffset`` for closed polygons, one path at a time."""

    def __init__(self, delta: float, join: Join, arc_tolerance: float) -> None:
        self.delta = delta
        self.join = join
        self.miter_limit = 2 / (_MITER_LIMIT * _MITER_LIMIT)
        if arc_tolerance <= 0.0:
            y = _DEFAULT_ARC_TOLERANCE
        elif arc_tolerance > abs(delta) * _DEFAULT_ARC_TOLERANCE:
            y = abs(delta) * _DEFAULT_ARC_TOLERANCE
        else:
            y = arc_tolerance
        steps = math.pi / math.acos(1 - y / abs(delta))
        steps = min(steps, abs(delta) * math.pi)  # "excessive precision check"
        self.sin = math.sin(2 * math.pi / steps) * (-1 if delta < 0 else 1)
        self.cos = math.cos(2 * math.pi / steps)
        self.steps_per_rad = steps / (2 * math.pi)

    def path(self, src: list[_Point]) -> list[_Point]:
        normals = [_unit_normal(src[j], src[(j + 1) % len(src)]) for j in range(len(src))]
        out: list[_Point] = []
        k = len(src) - 1
        for j in range(len(src)):
            k = self.point(src, normals, out, j, k)
        return out

    def point(
        self, src: list[_Point], normals: list[_Point], out: list[_Point], j: int, k: int
    ) -> int:
        """``OffsetPoint``: the corner at ``src[j]`` between edges ``k`` and ``j``."""
        (nkx, nky), (njx, njy) = normals[k], normals[j]
        p, d = src[j], self.delta
        sin_a = nkx * njy - njx * nky
        cos_a = nkx * njx + nky * njy
        if abs(sin_a * d) < 1.0 and cos_a > 0:  # nearly straight on: one point, k stays
            out.append((_round(p[0] + nkx * d), _round(p[1] + nky * d)))
            return k
        sin_a = max(-1.0, min(1.0, sin_a))
        if sin_a * d < 0:  # a corner turning away: both offsets and the corner itself
            out.append((_round(p[0] + nkx * d), _round(p[1] + nky * d)))
            out.append(p)
            out.append((_round(p[0] + njx * d), _round(p[1] + njy * d)))
        elif self.join == "round":
            self.round(p, (nkx, nky), (njx, njy), math.atan2(sin_a, cos_a), out)
        elif self.join == "miter" and 1 + cos_a >= self.miter_limit:
            q = d / (1 + cos_a)
            out.append((_round(p[0] + (nkx + njx) * q), _round(p[1] + (nky + njy) * q)))
        else:
            dx = math.tan(math.atan2(sin_a, cos_a) / 4)
            out.append((_round(p[0] + d * (nkx - nky * dx)), _round(p[1] + d * (nky + nkx * dx))))
            out.append((_round(p[0] + d * (njx + njy * dx)), _round(p[1] + d * (njy - njx * dx))))
        return j

    def round(self, p: _Point, nk: _Point, nj: _Point, angle: float, out: list[_Point]) -> None:
        """``DoRound``: steps of 2 pi / steps from edge k's normal, then edge j's normal."""
        steps = max(int(_round(self.steps_per_rad * abs(angle))), 1)
        x, y = nk
        d = self.delta
        for _ in range(steps):
            out.append((_round(p[0] + x * d), _round(p[1] + y * d)))
            x, y = x * self.cos - self.sin * y, x * self.sin + y * self.cos
        out.append((_round(p[0] + nj[0] * d), _round(p[1] + nj[1] * d)))
