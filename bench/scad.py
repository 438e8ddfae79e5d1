"""Benchmark: OpenSCAD products through the ``openscad`` program alone and through fabflow.

Run: ``.venv/bin/python -m bench.scad [--examples DIR] [--runs 1]``

Every model folder under ``examples/products`` (one main ``.scad`` each) is rendered with its
default parameters, in the same run, by ``openscad -o model.stl`` (binary STL, no sandbox, the
way a shop would call it) and by ``render_model(mode="auto")`` (the ``.csg`` export in its
sandbox, then manifold3d, or the program when a node is not supported). fabflow's first call
per process pays for imports and font loading; one untimed call warms it, as a worker is warm.

Prints one ``key=value`` per line:
  model=NAME openscad_s= fabflow_s= speedup= renderer= volume_rel_diff=   per model
  scad_models                 how many models
  scad_speedup_median         median of program time / fabflow time (goal >= 10)
  scad_speedup_min            the smallest of them
  scad_volume_max_rel_diff    largest relative volume difference (goal <= 0.005)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabflow.production.scad.openscad import read_binary_stl
from fabflow.production.scad.render import render_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "products"


@dataclass(frozen=True)
class Figures:
    """One model's times (median of the runs) and how far the two volumes are apart."""

    name: str
    openscad_s: float
    fabflow_s: float
    renderer: str
    volume_rel_diff: float

    @property
    def speedup(self) -> float:
        return self.openscad_s / self.fabflow_s


def openscad_alone(folder: Path, main: str) -> tuple[float, float]:
    """Seconds for ``openscad`` to write a binary STL, and the solid's volume."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "model.stl"
        started = time.perf_counter()
        command = ["openscad", "-o", str(output), "--export-format", "binstl", main]
        subprocess.run(command, cwd=folder, capture_output=True, check=True)
        seconds = time.perf_counter() - started
        return seconds, read_binary_stl(output).volume()


def measure(folder: Path, runs: int) -> Figures:
    """Both renderers on one model, ``runs`` times each, alternating."""
    (main,) = [path.name for path in folder.glob("*.scad")]
    render_model(folder, main, {})  # warm: imports, fonts, glyph cache
    program, ours = [], []
    volume = fast_volume = 0.0
    renderer = ""
    for _ in range(runs):
        seconds, volume = openscad_alone(folder, main)
        program.append(seconds)
        started = time.perf_counter()
        rendered = render_model(folder, main, {}, mode="auto")
        ours.append(time.perf_counter() - started)
        fast_volume, renderer = rendered.solid.volume(), rendered.renderer
    return Figures(
        folder.name,
        statistics.median(program),
        statistics.median(ours),
        renderer,
        abs(fast_volume - volume) / volume,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path, default=EXAMPLES, help="folder of models")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per model and renderer")
    args = parser.parse_args()
    folders = sorted(p for p in args.examples.iterdir() if any(p.glob("*.scad")))
    results = [measure(folder, args.runs) for folder in folders]
    for r in results:
        print(
            f"model={r.name} openscad_s={r.openscad_s:.3f} fabflow_s={r.fabflow_s:.4f}"
            f" speedup={r.speedup:.1f} renderer={r.renderer}"
            f" volume_rel_diff={r.volume_rel_diff:.2e}"
        )
    speedups = [r.speedup for r in results]
    print(f"scad_models={len(results)}")
    print(f"scad_speedup_median={statistics.median(speedups):.1f}")
    print(f"scad_speedup_min={min(speedups):.1f}")
    print(f"scad_volume_max_rel_diff={max(r.volume_rel_diff for r in results):.2e}")


if __name__ == "__main__":
    main()
