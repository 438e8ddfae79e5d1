"""Text as 2D outlines, from the Source Sans Pro font shipped as a Python package.

Glyph outlines are read with fontTools from the TrueType files, quadratic curves are flattened
to polygons, and a string becomes one manifold3d ``CrossSection``. TrueType draws holes (the
inside of "o") as contours wound the other way, so the cross-section is built with the NonZero
fill rule; manifold3d's default (Positive) keeps only one winding and text comes out empty.

Fonts and glyph outlines are cached per process: a warm worker lays out text without touching
the font file again.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

import numpy as np
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont
from manifold3d import CrossSection, FillRule
from numpy.typing import NDArray

FontWeight = Literal["light", "regular", "semibold", "bold", "black"]
FONT_WEIGHTS: tuple[FontWeight, ...] = ("light", "regular", "semibold", "bold", "black")

_FILES = {
    "light": "SourceSansPro-Light.ttf",
    "regular": "SourceSansPro-Regular.ttf",
    "semibold": "SourceSansPro-Semibold.ttf",
    "bold": "SourceSansPro-Bold.ttf",
    "black": "SourceSansPro-Black.ttf",
}
_CURVE_STEPS = 6  # segments per quadratic curve; smooth at any printable letter size
_Contour = NDArray[np.float64]
# fontTools reads tables lazily and is not safe to read from several threads at once (the API
# checks orders in a thread pool); cache hits below never take the lock.
_FONT_LOCK = threading.RLock()


class _FlattenPen(BasePen):  # type: ignore[misc]  # fontTools ships no type hints
    """Collects each contour as an (n, 2) array, curves flattened to line segments."""

    def __init__(self, glyph_set: Any) -> None:
        super().__init__(glyph_set)
        self.contours: list[_Contour] = []
        self._points: list[tuple[float, float]] = []

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self._points = [pt]

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self._points.append(pt)

    def _qCurveToOne(self, pt1: tuple[float, float], pt2: tuple[float, float]) -> None:
        t = np.linspace(0.0, 1.0, _CURVE_STEPS + 1)[1:, None]
        p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (self._points[-1], pt1, pt2))
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        self._points.extend(map(tuple, curve))

    def _curveToOne(
        self, pt1: tuple[float, float], pt2: tuple[float, float], pt3: tuple[float, float]
    ) -> None:
        t = np.linspace(0.0, 1.0, _CURVE_STEPS + 1)[1:, None]
        p0, p1, p2, p3 = (
            np.asarray(p, dtype=np.float64) for p in (self._points[-1], pt1, pt2, pt3)
        )
        curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        self._points.extend(map(tuple, curve))

    def _closePath(self) -> None:
        if len(self._points) >= 3:
            self.contours.append(np.asarray(self._points, dtype=np.float64))
        self._points = []

    _endPath = _closePath


def font_path(weight: FontWeight) -> str:
    """The TTF file of one weight inside the installed font package."""
    return str(files("font_source_sans_pro") / "files" / _FILES[weight])


@lru_cache(maxsize=len(_FILES))
def _font(weight: FontWeight) -> TTFont:
    with _FONT_LOCK:
        return TTFont(font_path(weight), lazy=True)


@lru_cache(maxsize=len(_FILES))
def _cmap(weight: FontWeight) -> dict[int, str]:
    with _FONT_LOCK:
        cmap: dict[int, str] = _font(weight).getBestCmap()
    return cmap


@lru_cache(maxsize=4096)
def _glyph(weight: FontWeight, glyph_name: str) -> tuple[tuple[_Contour, ...], float]:
    """Contours (font units) and advance width of one glyph, read once per process."""
    with _FONT_LOCK:
        font = _font(weight)
        glyph_set = font.getGlyphSet()
        pen = _FlattenPen(glyph_set)
        glyph_set[glyph_name].draw(pen)
        advance = float(font["hmtx"][glyph_name][0])
    return tuple(pen.contours), advance


@lru_cache(maxsize=4096)
def _glyph_box(weight: FontWeight, glyph_name: str) -> tuple[float, float, float, float, float]:
    """``(x0, y0, x1, y1, advance)`` of one glyph in font units (empty glyphs: inf box)."""
    contours, advance = _glyph(weight, glyph_name)
    if not contours:
        return (np.inf, np.inf, -np.inf, -np.inf, advance)
    points = np.concatenate(contours)
    low, high = points.min(axis=0), points.max(axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]), advance)


def text_bounds(
    text: str, weight: FontWeight, cap_height_mm: float
) -> tuple[float, float, float, float] | None:
    """The bounds ``text_outline`` would have, from cached glyph boxes: cheap enough for order
    intake. None when nothing would be drawn (only spaces)."""
    scale = cap_height_mm / cap_height_units(weight)
    cmap = _cmap(weight)
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    cursor = 0.0
    for ch in text:
        bx0, by0, bx1, by1, advance = _glyph_box(weight, cmap[ord(ch)])
        x0, y0 = min(x0, cursor + bx0), min(y0, by0)
        x1, y1 = max(x1, cursor + bx1), max(y1, by1)
        cursor += advance
    if x0 > x1:
        return None
    return (x0 * scale, y0 * scale, x1 * scale, y1 * scale)


def missing_characters(text: str, weight: FontWeight = "regular") -> list[str]:
    """Characters of ``text`` the font has no glyph for, each once, in order of appearance."""
    cmap = _cmap(weight)
    missing = [ch for ch in text if ord(ch) not in cmap]
    return list(dict.fromkeys(missing))


def describe_characters(chars: list[str]) -> str:
    """Characters named so a person can see them, even invisible ones: 'ä' (U+00E4)."""
    return ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars)


@lru_cache(maxsize=len(_FILES))
def cap_height_units(weight: FontWeight) -> float:
    """Height of capital letters in font units: the size a user means by "text height"."""
    with _FONT_LOCK:
        return float(_font(weight)["OS/2"].sCapHeight)


def text_outline(text: str, weight: FontWeight, cap_height_mm: float) -> CrossSection:
    """``text`` as a filled 2D region in millimetres, baseline at y=0, starting at x=0.

    Raises ``KeyError`` for a character the font cannot draw; intake refuses those first.
    """
    scale = cap_height_mm / cap_height_units(weight)
    cmap = _cmap(weight)
    contours: list[_Contour] = []
    cursor = 0.0
    for ch in text:
        glyph_contours, advance = _glyph(weight, cmap[ord(ch)])
        offset = np.array([cursor, 0.0])
        contours.extend((c + offset) * scale for c in glyph_contours)
        cursor += advance
    if not contours:
        return CrossSection()
    return CrossSection(contours, fillrule=FillRule.NonZero)


def warm_up(weights: tuple[FontWeight, ...] = FONT_WEIGHTS) -> None:
    """Parse the fonts and the common glyphs now, so the first order does not pay for it."""
    for weight in weights:
        text_outline("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", weight, 5.0)
