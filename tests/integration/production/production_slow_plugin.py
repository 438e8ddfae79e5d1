"""A product plugin that never finishes, to prove a runaway generation is killed.

It lives in an importable module (not in a test function) because the worker process imports
the product by its ``module:Class`` path.
"""

from __future__ import annotations

import os
from pathlib import Path

from manifold3d import Manifold
from pydantic import Field

from fabflow.production.products.base import Product, ProductParameters


class SpinParameters(ProductParameters):
    pid_file: str = Field(description="Where the worker writes its process id before spinning.")


class Spin(Product[SpinParameters]):
    """Writes its pid, then spins in pure Python forever."""

    name = "test-spin"
    title = "Spin (test)"
    description = "Never finishes."
    parameters = SpinParameters

    def build(self, params: SpinParameters) -> dict[str, Manifold]:
        Path(params.pid_file).write_text(str(os.getpid()))
        while True:
            pass


class Pair(Product[SpinParameters]):
    """Two separate cubes as one part: a product bug the mesh check must catch."""

    name = "test-pair"
    title = "Pair (test)"
    description = "Two bodies in one part."
    parameters = SpinParameters

    def build(self, params: SpinParameters) -> dict[str, Manifold]:
        cube = Manifold.cube((5, 5, 5))
        return {"pair": cube + cube.translate((10, 0, 0))}
