"""One order line to checked files: what a worker process runs.

``run_line`` takes a picklable ``LineJob`` and returns picklable results, never raising for
the failures a user can fix (bad parameters, a part that is not a printable solid): those come
back as a ``LineFailure`` so the step can report them as its own error.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifold3d import Manifold

from fabflow.errors import MeshCheckFailed, ParameterError, RenderFailed
from fabflow.production.line_check import parameter_problems
from fabflow.production.mesh import (
    MeshStats,
    TriMesh,
    check,
    from_manifold,
    snapped,
    without_slivers,
)
from fabflow.production.preview import render_png
from fabflow.production.products.base import Product
from fabflow.production.registry import load_path
from fabflow.production.writers import FORMATS, write

# Booleans can leave slivers: vertices closer than float32 (or a reader's welding) can tell
# apart. Collapsing edges shorter than 1 um, then 10 um, removes them without changing the
# part as printed (printers resolve ~50 um).
REPAIR_TOLERANCES = (0.001, 0.01)


@dataclass(frozen=True)
class ModelJob:
    """A line of a product made from a model: where its files are and how to render it."""

    folder: str  # the product version's files, unpacked (the renderer copies what it runs)
    main: str
    parts: tuple[str, ...]  # ("model",), or the values of its ``part`` dropdown
    renderer: str  # auto, manifold or openscad (FABFLOW_SCAD_RENDERER)
    memory_mb: int  # the openscad program's memory limit (FABFLOW_SCAD_MEMORY_MB)
    timeout_s: float  # for the whole line; openscad is killed before the pool's deadline


@dataclass(frozen=True)
class LineJob:
    """Everything a worker needs to make one order line's files."""

    line_id: str
    product_path: str  # module:Class, importable in the worker ("" for a model's line)
    parameters: dict[str, Any]
    file_format: str
    out_dir: str  # an existing folder for this attempt
    stem: str  # file-name-safe prefix of this line's files
    model: ModelJob | None = None


@dataclass(frozen=True)
class PartOutput:
    """One checked part, written to ``path`` with its preview at ``preview_path``."""

    part: str
    path: str
    preview_path: str
    sha256: str
    bytes: int
    stats: MeshStats
    renderer: str | None = None  # for a model: which renderer made it (manifold, openscad)


@dataclass(frozen=True)
class LineFailure:
    """Why a line cannot be made: ``error_type`` is ``parameters``, ``mesh_check`` or
    ``render`` (a model that did not render: openscad's reason, a limit, the timeout)."""

    error_type: str
    message: str
    parameter: str | None = None
    product: str | None = None  # for ``parameters``: the product whose check refused it
    problems: int = 1  # for ``parameters``: how many the check found (the first is told)


def run_line(job: LineJob) -> list[PartOutput] | LineFailure:
    """Build, check, write and preview every part of one order line."""
    if job.model is not None:
        return _run_model(job, job.model)
    product_class = load_path(job.product_path)
    problems = parameter_problems(product_class, job.parameters)
    if problems:
        key, message = problems[0]
        return LineFailure("parameters", message, key, product_class.name, len(problems))
    product: Product[Any] = product_class()
    try:
        solids = product.build(product.parameters.model_validate(job.parameters))
        meshes = {part: checked_mesh(part, solid) for part, solid in solids.items()}
    except ParameterError as exc:
        return LineFailure("parameters", exc.message, exc.parameter)
    except MeshCheckFailed as exc:
        return LineFailure("mesh_check", str(exc))
    return [_output(job, part, mesh, stats) for part, (mesh, stats) in meshes.items()]


def _run_model(job: LineJob, model: ModelJob) -> list[PartOutput] | LineFailure:
    """Render each part of a model's line, then check, write and preview it."""
    from fabflow.production.scad.render import render_model

    deadline = time.monotonic() + model.timeout_s
    outputs = []
    for part in model.parts:
        values = dict(job.parameters)
        if model.parts != ("model",):
            values["part"] = part
        try:
            rendered = render_model(
                Path(model.folder),
                model.main,
                values,
                mode=model.renderer,  # type: ignore[arg-type]  # checked by Settings
                timeout=max(0.1, deadline - time.monotonic()),
                memory_mb=model.memory_mb,
            )
            mesh, stats = checked_mesh(part, rendered.solid)
        except RenderFailed as exc:
            return LineFailure("render", exc.message)
        except MeshCheckFailed as exc:
            return LineFailure("mesh_check", str(exc))
        outputs.append(_output(job, part, mesh, stats, rendered.renderer))
    return outputs


def checked_mesh(part: str, solid: Manifold) -> tuple[TriMesh, MeshStats]:
    """The part's triangles once they pass every check; raises ``MeshCheckFailed``.

    Repairs, in order, while the checks fail: edges shorter than float32 can hold collapsed
    (``without_slivers``: the shape is unchanged), then the solid simplified by each of
    ``REPAIR_TOLERANCES`` (it moves by at most that many millimetres)."""
    mesh, stats = _checked(solid)
    for tolerance in REPAIR_TOLERANCES:
        if stats.ok or solid.is_empty():
            break
        mesh, stats = _checked(solid.simplify(tolerance))
    if not stats.ok:
        raise MeshCheckFailed(part, stats.problems)
    return mesh, stats


def _checked(solid: Manifold) -> tuple[TriMesh, MeshStats]:
    mesh = snapped(from_manifold(solid))
    stats = check(mesh)
    if not stats.ok:
        collapsed = without_slivers(mesh)
        collapsed_stats = check(collapsed)
        if collapsed_stats.ok:
            return collapsed, collapsed_stats
    return mesh, stats


def _output(
    job: LineJob, part: str, mesh: TriMesh, stats: MeshStats, renderer: str | None = None
) -> PartOutput:
    file_format = FORMATS[job.file_format]
    path = Path(job.out_dir) / f"{job.stem}-{part}.{file_format.extension}"
    write(mesh, path, job.file_format, name=part)
    preview = path.with_name(f"{job.stem}-{part}.png")
    preview.write_bytes(render_png(mesh))
    return PartOutput(
        part=part,
        path=str(path),
        preview_path=str(preview),
        sha256=_sha256(path),
        bytes=path.stat().st_size,
        stats=stats,
        renderer=renderer,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def warm_up() -> None:
    """Run in each new worker process: import the heavy modules and read the fonts now."""
    from fabflow.production import text

    text.warm_up(("bold", "regular"))
