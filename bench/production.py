"""Benchmark of production file generation: products, writers against trimesh, thumbnails.

Run: .venv/bin/python bench/production.py

Prints one ``key=value`` per line:
  nameplate_ms, ring_engraved_ms, box_ms   median generation (build, mesh, checks) of one line
  stl_mb_per_s, trimesh_stl_mb_per_s, stl_ratio   binary STL of a ~1M-triangle mesh
  obj_s, trimesh_obj_s, obj_ratio                OBJ of the same mesh (ratio = trimesh / ours)
  thumbnail_ms                                   PNG preview of a ~100k-triangle mesh
Goals: nameplate < 30 ms; STL >= 300 MB/s and >= 5x trimesh; OBJ >= 3x faster; thumbnail < 150.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trimesh
from manifold3d import Manifold

from fabflow.production.build import checked_mesh
from fabflow.production.mesh import TriMesh, from_manifold
from fabflow.production.preview import render_png
from fabflow.production.products.box import Box
from fabflow.production.products.nameplate import Nameplate
from fabflow.production.products.ring import Ring
from fabflow.production.registry import ProductClass
from fabflow.production.text import warm_up
from fabflow.production.writers import write


def median_s(
    fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``fn`` in seconds; ``setup`` runs before each call, untimed."""
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def generation_ms(product: ProductClass, parameters: dict[str, Any], runs: int = 15) -> float:
    """Median time to build a line's parts and pass them through the mesh checks."""
    instance = product()
    params = product.parameters.model_validate(parameters)

    def generate() -> None:
        for part, solid in instance.build(params).items():
            checked_mesh(part, solid)

    generate()  # first run pays for imports and glyph outlines, as a warm worker has
    return median_s(generate, runs) * 1000


def writer_figures(mesh: TriMesh, folder: Path) -> dict[str, float]:
    """Our binary STL and OBJ writers against trimesh's, on the same mesh in the same run."""
    stl, obj = folder / "ours.stl", folder / "ours.obj"
    fresh: list[Any] = []

    def new_trimesh() -> None:
        # A new object each run: trimesh caches face normals, which a real export computes.
        fresh[:] = [trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)]

    ours_stl = median_s(lambda: write(mesh, stl, "stl"), 7, lambda: stl.unlink(missing_ok=True))
    size_mb = stl.stat().st_size / 1e6
    theirs_stl = median_s(lambda: fresh[0].export(folder / "trimesh.stl"), 5, new_trimesh)
    ours_obj = median_s(lambda: write(mesh, obj, "obj"), 3, lambda: obj.unlink(missing_ok=True))
    theirs_obj = median_s(lambda: fresh[0].export(folder / "trimesh.obj"), 2, new_trimesh)
    return {
        "stl_mb_per_s": size_mb / ours_stl,
        "trimesh_stl_mb_per_s": size_mb / theirs_stl,
        "stl_ratio": theirs_stl / ours_stl,
        "obj_s": ours_obj,
        "trimesh_obj_s": theirs_obj,
        "obj_ratio": theirs_obj / ours_obj,
    }


def main() -> None:
    warm_up(("bold",))
    figures: dict[str, float] = {
        "nameplate_ms": generation_ms(Nameplate, {"text": "Ada Lovelace", "hole": True}),
        "ring_engraved_ms": generation_ms(Ring, {"size": 7, "text": "Ada & Charles 1843"}),
        "box_ms": generation_ms(Box, {"lid": True}),
    }
    big = from_manifold(Manifold.sphere(50, 1414))  # ~1.0M triangles
    with tempfile.TemporaryDirectory() as folder:
        figures.update(writer_figures(big, Path(folder)))
    thumb_mesh = from_manifold(Manifold.sphere(50, 448))  # ~100k triangles
    render_png(thumb_mesh)
    figures["thumbnail_ms"] = median_s(lambda: render_png(thumb_mesh), 9) * 1000
    print(f"stl_triangles={len(big.faces)}")
    print(f"thumbnail_triangles={len(thumb_mesh.faces)}")
    for key, value in figures.items():
        print(f"{key}={value:.3f}" if value < 10 else f"{key}={value:.1f}")


if __name__ == "__main__":
    main()
