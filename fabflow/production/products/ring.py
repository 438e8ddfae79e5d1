"""Ring: a band by US or EU size, with optional text engraved around the outside."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from manifold3d import CrossSection, JoinType, Manifold
from numpy.typing import NDArray
from pydantic import Field, ValidationInfo, field_validator

from fabflow.production.products.base import (
    ParameterError,
    ParameterProblem,
    Product,
    ProductParameters,
)
from fabflow.production.text import FontWeight, text_outline

SizeSystem = Literal["us", "eu"]
US_RANGE = (0.0, 16.0)
EU_RANGE = (40.0, 76.0)  # ISO 8653: the inner circumference in millimetres
MIN_TEXT_HEIGHT = 1.2  # mm: engraving smaller than this closes up when printed
MIN_WALL_UNDER_TEXT = 0.6  # mm of band left under the engraving
_SEGMENTS = 180  # around the band: the facets are far below the engraving depth
_OUTSIDE = 0.3  # the engraving tool starts this far outside the band
# Text centred on the front (-y, as previews see it), shifted off the band's facet edges by
# an irrational part of a facet: letter edges lying exactly on facet edges leave pinched
# (non-manifold) slivers in the boolean.
_TEXT_ANGLE = -math.pi / 2 + 0.618034 * (2 * math.pi / _SEGMENTS)


class RingParameters(ProductParameters):
    """Sizes in millimetres; ``size`` in the chosen ``sizeSystem``."""

    size_system: SizeSystem = Field(
        default="us", description="us (0-16, quarter sizes allowed) or eu (ISO 8653, 40-76)."
    )
    size: float = Field(default=7, description="Ring size in sizeSystem.")
    width: float = Field(default=4, ge=2, le=12, description="Band width along the finger (mm).")
    thickness: float = Field(default=1.8, ge=1.2, le=4, description="Band thickness (mm).")
    text: str = Field(default="", max_length=40, description="Text engraved on the outside.")
    text_depth: float = Field(default=0.4, ge=0.2, le=1.5, description="Engraving depth (mm).")
    font_weight: FontWeight = Field(default="bold", description="Weight of the letters.")

    @field_validator("size")
    @classmethod
    def _size_in_range(cls, size: float, info: ValidationInfo) -> float:
        system = info.data.get("size_system", "us")
        low, high = US_RANGE if system == "us" else EU_RANGE
        if not low <= size <= high:
            raise ValueError(f"{system.upper()} ring sizes run from {low:g} to {high:g}")
        return size


def inner_diameter(size: float, system: SizeSystem) -> float:
    """Inner diameter in mm: US size 0 is 11.63 mm, each size adds 0.8128 mm (1/32 inch);
    an EU (ISO 8653) size is the inner circumference in mm."""
    if system == "us":
        return 11.63 + 0.8128 * size
    return size / math.pi


class Ring(Product[RingParameters]):
    """A comfortable band with rounded edges; engraved text wraps around the outside."""

    name = "ring"
    title = "Ring"
    description = (
        "A band by US or EU ring size with rounded edges. Optional text is engraved around "
        "the outside, centred on the band and sized to its width."
    )
    parameters = RingParameters
    text_parameters = ("text",)
    font_parameter = "font_weight"

    def build(self, params: RingParameters) -> dict[str, Manifold]:
        inner = inner_diameter(params.size, params.size_system) / 2
        band = _band(inner, params.thickness, params.width)
        if params.text.strip():
            band = band - _engraving(params, inner + params.thickness)
        return {"ring": band}

    def problems(self, params: RingParameters) -> list[ParameterProblem]:
        found = super().problems(params)
        if params.text_depth > params.thickness - MIN_WALL_UNDER_TEXT:
            found.append(
                ParameterProblem(
                    "textDepth",
                    f"must leave {MIN_WALL_UNDER_TEXT:g} mm of band: at most "
                    f"{params.thickness - MIN_WALL_UNDER_TEXT:.1f} mm for a "
                    f"{params.thickness:g} mm thick band",
                )
            )
        if not found and params.text.strip():
            try:
                _layout(params, inner_diameter(params.size, params.size_system) / 2)
            except ParameterError as exc:
                found.append(ParameterProblem(exc.parameter, exc.message))
        return found


def _band(inner: float, thickness: float, width: float) -> Manifold:
    """The band revolved from its (radius, height) profile, edges rounded for comfort."""
    round_off = min(0.5, thickness / 3, width / 4)
    profile = CrossSection.square((thickness, width)).translate((inner, 0.0))
    profile = profile.offset(-round_off, JoinType.Round).offset(round_off, JoinType.Round)
    return Manifold.revolve(profile, _SEGMENTS)


def _layout(params: RingParameters, inner: float) -> CrossSection:
    """The text outline, centred at x=0 (arc length on the outside) and y=width/2."""
    outer = inner + params.thickness
    outline = text_outline(params.text.strip(), params.font_weight, 0.55 * params.width)
    x0, y0, x1, y1 = outline.bounds()
    room = 0.85 * 2 * math.pi * outer  # leave a gap where the text's ends meet
    scale = min(1.0, room / (x1 - x0))
    if 0.55 * params.width * scale < MIN_TEXT_HEIGHT:
        raise ParameterError(
            "text",
            f"{len(params.text.strip())} characters do not fit around this ring at the "
            f"smallest engravable letter height ({MIN_TEXT_HEIGHT:g} mm); shorten the text",
        )
    centred = outline.translate((-(x0 + x1) / 2, -(y0 + y1) / 2)).scale((scale, scale))
    return centred.translate((0.0, params.width / 2))


def _engraving(params: RingParameters, outer: float) -> Manifold:
    """The letters as a solid wrapped onto the band's outside, to subtract from it."""
    inner = outer - params.thickness
    tool = _layout(params, inner).extrude(params.text_depth + _OUTSIDE)
    # Short edges first, so the letters bend with the band instead of cutting chords.
    tool = tool.refine_to_length(0.5)
    bottom = outer - params.text_depth

    def wrap(points: NDArray[np.float64]) -> NDArray[np.float64]:
        # x is arc length on the outside, y runs along the finger, z goes outwards. The map
        # keeps orientation, so the wrapped tool is still a valid solid.
        angle = points[:, 0] / outer + _TEXT_ANGLE
        radius = bottom + points[:, 2]
        return np.column_stack([radius * np.cos(angle), radius * np.sin(angle), points[:, 1]])

    return tool.warp_batch(wrap)
