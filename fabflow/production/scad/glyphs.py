"""OpenSCAD's ``text()`` rebuilt: same font, same shaping, same scale, same curve steps.

OpenSCAD 2021 (``FreetypeRenderer.cc``) finds the font through fontconfig (an empty name means
"Liberation Sans:style=Regular"), shapes the string with HarfBuzz (kerning included), and loads
glyphs at a character size of 1e5/64 pt at 100 dpi. Outline points are divided by 1e5, but glyph
advances, offsets and the boxes used for alignment by 1.024e5; every point is then multiplied by
``size``. Each quadratic or cubic curve becomes ``max(floor(fragments(size) / 8) + 1, 2)``
straight steps. Glyphs are filled non-zero and united.

Here fontconfig is asked through ``fc-match`` (cached per font name), HarfBuzz through
uharfbuzz, and outlines are read with fontTools.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import uharfbuzz as hb  # type: ignore[import-untyped]
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont
from manifold3d import CrossSection, FillRule, OpType
from numpy.typing import NDArray

from fabflow.production.scad.primitives import Unsupported, fragments

DEFAULT_FONT = "Liberation Sans:style=Regular"
_CHAR_SIZE = 1e5  # FT_Set_Char_Size(face, 0, 1e5, 100, 100): 26.6 points
_OUTLINE_UNSCALE = 1e5
_METRIC_UNSCALE = 1.024e5
_LOCK = threading.RLock()  # fontTools reads tables lazily and is not thread-safe
_Contour = NDArray[np.float64]


class _CurvePen(BasePen):  # type: ignore[misc]  # fontTools ships no type hints
    """Contours as point arrays, each curve cut into ``steps`` straight pieces."""

    def __init__(self, glyph_set: Any, steps: int) -> None:
        super().__init__(glyph_set)
        self.steps = steps
        self.contours: list[_Contour] = []
        self._points: list[NDArray[np.float64]] = []
        self._t = (np.arange(1, steps + 1) / steps)[:, None]

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self._points = [np.asarray([pt], dtype=np.float64)]

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self._points.append(np.asarray([pt], dtype=np.float64))

    def _qCurveToOne(self, pt1: tuple[float, float], pt2: tuple[float, float]) -> None:
        t = self._t
        p0, p1, p2 = self._last(), np.asarray(pt1), np.asarray(pt2)
        self._points.append((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2)

    def _curveToOne(
        self, pt1: tuple[float, float], pt2: tuple[float, float], pt3: tuple[float, float]
    ) -> None:
        t = self._t
        p0, p1, p2, p3 = self._last(), np.asarray(pt1), np.asarray(pt2), np.asarray(pt3)
        curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2
        self._points.append(curve + t**3 * p3)

    def _last(self) -> NDArray[np.float64]:
        last: NDArray[np.float64] = self._points[-1][-1]
        return last

    def _closePath(self) -> None:
        if self._points:
            points = np.concatenate(self._points)
            if len(points) > 1 and np.array_equal(points[0], points[-1]):
                points = points[:-1]
            if len(points) >= 3:
                self.contours.append(points)
        self._points = []

    _endPath = _closePath


@lru_cache(maxsize=64)
def font_file(font: str) -> str:
    """The font file fontconfig picks for an OpenSCAD font name, as OpenSCAD asks for it."""
    pattern = (font.strip() or DEFAULT_FONT) + ":outline=True:scalable=True"
    found = subprocess.run(
        ["fc-match", "--format=%{file}", pattern],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        # as openscad runs: HOME hidden, so a user's own fonts cannot change the match
        env={**os.environ, "HOME": "/tmp"},
    )
    if found.returncode != 0 or not found.stdout:
        raise Unsupported(f"text (font {font!r} not found)")
    return found.stdout


@lru_cache(maxsize=16)
def _fonts(path: str) -> tuple[TTFont, hb.Font, float]:
    """fontTools and HarfBuzz views of one file, and its outline scale (units to mm / size)."""
    with _LOCK:
        tt = TTFont(path, lazy=True, fontNumber=0)
        upem = float(tt["head"].unitsPerEm)
        ppem = _CHAR_SIZE / 64 * 100 / 72
        if tt["head"].flags & 8:  # "integer ppem": FreeType rounds the pixel size
            ppem = round(ppem)
    with open(path, "rb") as handle:
        face = hb.Face(hb.Blob(handle.read()))
    return tt, hb.Font(face), ppem * 64 / upem


@lru_cache(maxsize=4096)
def _glyph(path: str, gid: int, steps: int) -> tuple[tuple[_Contour, ...], float, float]:
    """Contours in font units, and the control box's top and bottom, of one glyph."""
    tt, _, _ = _fonts(path)
    with _LOCK:
        name = tt.getGlyphName(gid)
        glyph_set = tt.getGlyphSet()
        pen = _CurvePen(glyph_set, steps)
        glyph_set[name].draw(pen)
    if not pen.contours:
        return (), 0.0, 0.0
    points = np.concatenate(pen.contours)
    return tuple(pen.contours), float(points[:, 1].max()), float(points[:, 1].min())


def text(args: Mapping[str, Any]) -> CrossSection | None:
    """The 2D outline of one ``text(...)`` node of a ``.csg`` file."""
    string = args.get("text")
    if not isinstance(string, str) or not string:
        return None
    size, spacing, fn, fs, fa = (
        _number(args, key, default)
        for key, default in (
            ("size", 10.0),
            ("spacing", 1.0),
            ("$fn", 0.0),
            ("$fs", 2.0),
            ("$fa", 12.0),
        )
    )
    steps = int(max(math.floor(fragments(size, fn, fs, fa) / 8) + 1, 2))
    path = font_file(str(args.get("font", "")))
    _, font, unit = _fonts(path)
    direction = str(args.get("direction", "ltr"))
    if direction not in ("ltr", "rtl"):
        raise Unsupported(f"text (direction {direction})")
    infos, positions = _shape(font, string, args)
    width = ascend = descend = 0.0
    glyphs = []
    for info, pos in zip(infos, positions, strict=True):
        contours, top, bottom = _glyph(path, info.codepoint, steps)
        glyphs.append((contours, pos))
        width += round(pos.x_advance * unit) / _METRIC_UNSCALE * spacing
        ascend = max(ascend, math.ceil(top * unit / 64) * 64 / _METRIC_UNSCALE)
        descend = max(descend, -math.floor(bottom * unit / 64) * 64 / _METRIC_UNSCALE)
    x0 = _x_offset(str(args.get("halign", "left")), width)
    y0 = _y_offset(str(args.get("valign", "baseline")), ascend, descend)
    return _outline(glyphs, unit, spacing, size, (x0, y0))


def _shape(font: hb.Font, string: str, args: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    buffer = hb.Buffer()
    buffer.add_str(string)
    buffer.direction = str(args.get("direction", "ltr"))
    buffer.script = str(args.get("script", "Latn"))
    buffer.language = str(args.get("language", "en"))
    with _LOCK:
        hb.shape(font, buffer, {})
    return list(buffer.glyph_infos or []), list(buffer.glyph_positions or [])


def _number(args: Mapping[str, Any], key: str, default: float) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsupported(f"text ({key} = {value!r})")
    return float(value)


def _outline(
    glyphs: list[tuple[tuple[_Contour, ...], Any]],
    unit: float,
    spacing: float,
    size: float,
    origin: tuple[float, float],
) -> CrossSection | None:
    pieces = []
    advance_x = advance_y = 0.0
    for contours, pos in glyphs:
        offset = np.array(
            [
                origin[0] + round(pos.x_offset * unit) / _METRIC_UNSCALE + advance_x,
                origin[1] + round(pos.y_offset * unit) / _METRIC_UNSCALE + advance_y,
            ]
        )
        if contours:
            outline = [size * (c * unit / _OUTLINE_UNSCALE + offset) for c in contours]
            pieces.append(CrossSection(outline, FillRule.NonZero))
        advance_x += round(pos.x_advance * unit) / _METRIC_UNSCALE * spacing
        advance_y += round(pos.y_advance * unit) / _METRIC_UNSCALE * spacing
    if not pieces:
        return None
    return CrossSection.batch_boolean(pieces, OpType.Add)


def _x_offset(halign: str, width: float) -> float:
    return {"right": -width, "center": -width / 2.0}.get(halign, 0.0)


def _y_offset(valign: str, ascend: float, descend: float) -> float:
    offsets = {"top": -ascend, "center": descend / 2.0 - ascend / 2.0, "bottom": descend}
    return offsets.get(valign, 0.0)
