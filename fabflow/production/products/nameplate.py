"""Nameplate: a rounded plate with the customer's text raised on it."""

from __future__ import annotations

from dataclasses import dataclass

from manifold3d import CrossSection, Manifold
from pydantic import Field

from fabflow.production.products.base import (
    ParameterError,
    ParameterProblem,
    Product,
    ProductParameters,
)
from fabflow.production.shapes import CIRCLE_SEGMENTS, raised, rounded_rectangle
from fabflow.production.text import FontWeight, missing_characters, text_bounds, text_outline

MIN_TEXT_HEIGHT = 2.0  # mm of capital height: below this, FDM printers blur the letters


class NameplateParameters(ProductParameters):
    """Sizes in millimetres."""

    text: str = Field(min_length=1, max_length=40, description="Text raised on the plate.")
    width: float = Field(default=80, ge=20, le=250, description="Plate width (mm).")
    height: float = Field(default=25, ge=10, le=120, description="Plate height (mm).")
    thickness: float = Field(default=2.5, ge=1, le=10, description="Plate thickness (mm).")
    text_height: float = Field(
        default=12,
        ge=MIN_TEXT_HEIGHT,
        le=60,
        description="Largest capital-letter height (mm); long text is made smaller to fit.",
    )
    text_depth: float = Field(
        default=1.0, ge=0.4, le=5, description="How far the text stands out (mm)."
    )
    corner_radius: float = Field(default=3, ge=0, le=30, description="Corner radius (mm).")
    hole: bool = Field(default=False, description="Add a key-ring hole at the left end.")
    hole_diameter: float = Field(default=4, ge=2, le=12, description="Hole diameter (mm).")
    font_weight: FontWeight = Field(default="bold", description="Weight of the letters.")


@dataclass(frozen=True)
class _Layout:
    margin: float
    hole_x: float
    text_left: float


class Nameplate(Product[NameplateParameters]):
    """Rounded plate, raised text auto-fitted to it, optional key-ring hole."""

    name = "nameplate"
    title = "Nameplate"
    description = (
        "A rounded plate with the customer's text raised on it. The text is centred and made "
        "smaller when it would not fit; an optional key-ring hole sits at the left end."
    )
    parameters = NameplateParameters
    text_parameters = ("text",)
    font_parameter = "font_weight"

    def build(self, params: NameplateParameters) -> dict[str, Manifold]:
        solid = raised(_plate(params), params.thickness, _fitted_text(params), params.text_depth)
        return {"nameplate": solid}

    def problems(self, params: NameplateParameters) -> list[ParameterProblem]:
        found = super().problems(params)
        if found:
            return found
        try:
            bounds = text_bounds(params.text, params.font_weight, params.text_height)
            _text_scale(params, bounds)
        except ParameterError as exc:
            found.append(ParameterProblem(exc.parameter, exc.message))
        return found


def _layout(params: NameplateParameters) -> _Layout:
    margin = max(1.5, 0.08 * min(params.width, params.height)) + 0.3 * params.corner_radius
    hole_x = -params.width / 2 + margin + params.hole_diameter / 2
    if params.hole and params.hole_diameter + 2 * margin > params.height:
        raise ParameterError(
            "holeDiameter",
            f"a {params.hole_diameter:g} mm hole does not fit on a plate "
            f"{params.height:g} mm high; use at most {params.height - 2 * margin:.1f} mm",
        )
    text_left = hole_x + params.hole_diameter / 2 + margin if params.hole else -params.width / 2
    return _Layout(margin, hole_x, text_left + (0 if params.hole else margin))


def _plate(params: NameplateParameters) -> CrossSection:
    plate = rounded_rectangle(params.width, params.height, params.corner_radius)
    if params.hole:
        layout = _layout(params)
        hole = CrossSection.circle(params.hole_diameter / 2, CIRCLE_SEGMENTS)
        plate = plate - hole.translate((layout.hole_x, 0.0))
    return plate


def _fitted_text(params: NameplateParameters) -> CrossSection:
    """The text outline scaled down as needed and centred on the free part of the plate."""
    layout = _layout(params)
    if missing := missing_characters(params.text, params.font_weight):
        raise ParameterError("text", f"the font cannot draw {missing!r}")
    outline = text_outline(params.text, params.font_weight, params.text_height)
    bounds = None if outline.is_empty() else outline.bounds()
    # Intake checked the fit with the glyphs' boxes; the drawn outline's bounds differ in the
    # last digits, which flipped a text exactly at the smallest height: what intake accepted
    # must be made, so the builder allows that much.
    scale = _text_scale(params, bounds, slack=OUTLINE_SLACK)
    x0, y0, x1, y1 = bounds or (0.0, 0.0, 0.0, 0.0)
    centred = outline.translate((-(x0 + x1) / 2, -(y0 + y1) / 2)).scale((scale, scale))
    right = params.width / 2 - layout.margin
    return centred.translate(((layout.text_left + right) / 2, 0.0))


OUTLINE_SLACK = 1e-3  # the builder's allowance under MIN_TEXT_HEIGHT (see _fitted_text)


def _text_scale(
    params: NameplateParameters,
    bounds: tuple[float, float, float, float] | None,
    slack: float = 0.0,
) -> float:
    """How much the text must shrink to fit the free part of the plate (1: not at all)."""
    if bounds is None:
        raise ParameterError("text", "the text has nothing to draw (only spaces)")
    layout = _layout(params)
    x0, y0, x1, y1 = bounds
    room_w = params.width / 2 - layout.margin - layout.text_left
    room_h = params.height - 2 * layout.margin
    scale = min(1.0, room_w / (x1 - x0), room_h / (y1 - y0))
    if params.text_height * scale < MIN_TEXT_HEIGHT * (1 - slack):
        raise ParameterError("text", _too_long(params, room_w, (x1 - x0) / params.text_height))
    return scale


def _too_long(params: NameplateParameters, room_w: float, width_per_height: float) -> str:
    needed = width_per_height * MIN_TEXT_HEIGHT - room_w
    return (
        f"{len(params.text)} characters do not fit on a {params.width:g} mm plate at the "
        f"smallest printable letter height ({MIN_TEXT_HEIGHT:g} mm); shorten the text or make "
        f"the plate at least {params.width + needed:.0f} mm wide"
    )
