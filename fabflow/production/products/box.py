"""Box: a hollow box with an optional fitting lid, the lid printed as a separate part."""

from __future__ import annotations

from manifold3d import CrossSection, Manifold
from pydantic import Field

from fabflow.production.products.base import ParameterProblem, Product, ProductParameters
from fabflow.production.shapes import inset, rounded_rectangle

MIN_INSIDE = 4.0  # mm: the smallest useful opening


class BoxParameters(ProductParameters):
    """Outer sizes in millimetres."""

    width: float = Field(default=60, ge=20, le=300, description="Outer width, x (mm).")
    depth: float = Field(default=40, ge=20, le=300, description="Outer depth, y (mm).")
    height: float = Field(default=30, ge=10, le=200, description="Outer height, z (mm).")
    wall: float = Field(default=2, ge=0.8, le=10, description="Wall and floor thickness (mm).")
    corner_radius: float = Field(default=3, ge=0, le=50, description="Outer corner radius (mm).")
    lid: bool = Field(default=False, description="Also make a lid that fits in the opening.")
    lid_clearance: float = Field(
        default=0.2, ge=0, le=1, description="Gap between the lid's lip and the wall (mm)."
    )
    lip_height: float = Field(
        default=5, ge=2, le=30, description="How deep the lid's lip reaches into the box (mm)."
    )


class Box(Product[BoxParameters]):
    """Open-topped box by its outer size; the lid, if asked for, is a second file."""

    name = "box"
    title = "Box"
    description = (
        "A hollow box by outer width, depth and height with rounded corners. With lid=true, a "
        "lid with a lip that fits inside the opening is made as a second part, printed lip up."
    )
    parameters = BoxParameters

    def build(self, params: BoxParameters) -> dict[str, Manifold]:
        outline = rounded_rectangle(params.width, params.depth, params.corner_radius)
        opening = inset(outline, params.wall)
        shell = outline.extrude(params.height)
        # The cavity pokes out of the top so no face of it is coplanar with the rim.
        cavity = opening.extrude(params.height).translate((0.0, 0.0, params.wall))
        parts = {"box": shell - cavity}
        if params.lid:
            parts["lid"] = _lid(outline, opening, params)
        return parts

    def problems(self, params: BoxParameters) -> list[ParameterProblem]:
        found = super().problems(params)
        smaller = min(params.width, params.depth)
        if smaller - 2 * params.wall < MIN_INSIDE:
            found.append(
                ParameterProblem(
                    "wall",
                    f"leaves less than {MIN_INSIDE:g} mm inside a {smaller:g} mm box; use at most "
                    f"{(smaller - MIN_INSIDE) / 2:.1f} mm",
                )
            )
        if params.wall >= params.height - 1:
            found.append(ParameterProblem("wall", "the floor would fill the box; use less"))
        if params.corner_radius > smaller / 2:
            found.append(ParameterProblem("cornerRadius", f"can be at most half of {smaller:g} mm"))
        if params.lid and smaller - 4 * params.wall - 2 * params.lid_clearance < MIN_INSIDE:
            found.append(ParameterProblem("lid", "the box is too small for a lid with a lip"))
        if params.lid and params.lip_height > params.height - params.wall:
            found.append(
                ParameterProblem(
                    "lipHeight", f"can be at most {params.height - params.wall:g} mm in this box"
                )
            )
        return found


def _lid(outline: CrossSection, opening: CrossSection, params: BoxParameters) -> Manifold:
    """A plate the size of the box with a hollow lip that slides into the opening."""
    lip_outer = inset(opening, params.lid_clearance)
    lip_ring = lip_outer - inset(lip_outer, params.wall)
    plate = outline.extrude(params.wall)
    # The lip starts inside the plate so the union is one body without touching faces.
    lip = lip_ring.extrude(params.lip_height + 0.5).translate((0.0, 0.0, params.wall - 0.5))
    return plate + lip
