"""Previews: a PNG of the part, drawn without a display."""

from __future__ import annotations

import io

import numpy as np
from manifold3d import Manifold
from PIL import Image

from fabflow.production.mesh import from_manifold
from fabflow.production.preview import BACKGROUND, render, render_png


def test_the_thumbnail_is_a_png_of_the_requested_size() -> None:
    png = render_png(from_manifold(Manifold.cube((10, 10, 10))), size=128)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (128, 128)


def test_the_part_fills_the_middle_and_is_shaded() -> None:
    pixels = render(from_manifold(Manifold.cube((10, 10, 10))), 200, -35, 30)
    drawn = np.any(pixels != BACKGROUND, axis=2)
    assert drawn[100, 100] and not drawn[2, 2]
    assert 0.2 < drawn.mean() < 0.9
    # Three faces of a cube are visible, each with its own brightness.
    assert len(np.unique(pixels[drawn].sum(axis=1))) >= 3


def test_the_nearer_surface_hides_the_one_behind() -> None:
    # A small red-free... cube in front of a large one: the front cube's pixels win the depth test.
    near = Manifold.cube((4, 4, 4), center=True).translate((0, -20, 0))
    far = Manifold.cube((30, 2, 30), center=True).translate((0, 10, 0))
    pixels = render(from_manifold(near + far), 100, 0, 0)  # looking along +y
    centre = pixels[50, 50].astype(int)
    # The front face of the near cube faces the camera squarely, like the far wall: both are
    # drawn, and the centre shows the near cube's face, not a hole.
    assert tuple(centre) != BACKGROUND
