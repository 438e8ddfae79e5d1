"""generate-production-files: each order line becomes checked, printable files in the store.

Lines are checked and built in warm worker processes (CPU work that must neither block the
event loop nor outlive the step's timeout: a line that overruns has its process killed). Files
are written to a scratch folder, then put in the file store under a deterministic key, so a
re-run of the step replaces them rather than adding copies.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fabflow.errors import (
    NotFound,
    PermanentStepError,
    PoolTimeout,
    TransientStepError,
    UnknownProduct,
    WorkerCrashed,
)
from fabflow.files import FileStore, safe_part
from fabflow.flows.options import GenerateProductionFilesOptions
from fabflow.production.build import (
    LineFailure,
    LineJob,
    ModelJob,
    PartOutput,
    run_line,
    warm_up,
)
from fabflow.production.pool import WarmPool
from fabflow.production.registry import get, import_path
from fabflow.production.scad.stored import local_model
from fabflow.production.writers import FORMATS
from fabflow.steps.base import StepContext, StepExecutor, StepResult

# A model's renderer stops this long before the step's deadline, so openscad is killed by its
# own timeout (with a clear error) before the pool kills the process that runs it.
RENDER_MARGIN_S = 0.5


class ProductionStep(StepExecutor):
    """Builds every order line's parts, checks them, and stores files and previews."""

    type_name = "generate-production-files"
    options_model = GenerateProductionFilesOptions

    _pool: WarmPool | None = None
    _starting: asyncio.Lock | None = None

    async def start(self) -> None:
        """Nothing yet: the processes start with the first generation, so a worker whose
        flows make no files (or that restarts often) does not pay for them."""

    async def _ensure_pool(self) -> WarmPool:
        """Start the worker processes and load fonts in them, once."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                pool = WarmPool(self.settings.production_processes)
                await pool.start(warm=warm_up)
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def execute(self, ctx: StepContext) -> StepResult:
        started = time.perf_counter()
        await self._ensure_pool()
        options: GenerateProductionFilesOptions = ctx.options
        lines = list(ctx.order.get("lines") or [])
        # The scratch folder, a model's unpacked files and their removal touch the disk: off
        # the event loop, which the API and the other steps share.
        scratch, jobs = await asyncio.to_thread(_jobs, ctx, lines, options.file_format)
        try:
            outputs = await self._run_all(jobs, time.monotonic() + ctx.timeout_s)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
            raise
        records = await asyncio.to_thread(
            _store_and_clean, ctx, jobs, outputs, options.file_format, scratch
        )
        ms = round((time.perf_counter() - started) * 1000)
        details = {"lines": len(lines), "files": len(records), "ms": ms}
        return StepResult(files=records, details=details, output={"files": records})

    async def _run_all(self, jobs: list[LineJob], deadline: float) -> list[list[PartOutput]]:
        """Every line in parallel; the first failure stops (and kills) the others."""
        tasks = [asyncio.create_task(self._run(job, deadline)) for job in jobs]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _run(self, job: LineJob, deadline: float) -> list[PartOutput]:
        assert self._pool is not None
        remaining = max(0.0, deadline - time.monotonic())
        try:
            result = await self._pool.run(run_line, job, timeout=remaining)
        except PoolTimeout as exc:
            raise TransientStepError(
                f'line "{job.line_id}": generating the files took longer than the step allows '
                "and was stopped",
                error_type="timeout",
            ) from exc
        except WorkerCrashed as exc:
            raise TransientStepError(
                f'line "{job.line_id}": the worker process building it died',
                error_type="worker_crashed",
            ) from exc
        if isinstance(result, LineFailure):
            raise _failure(job, result)
        return result


def _jobs(ctx: StepContext, lines: list[Any], file_format: str) -> tuple[Path, list[LineJob]]:
    """A scratch folder for this attempt and a worker job per line (raises, the folder
    removed, for a line that cannot be made)."""
    scratch = Path(tempfile.mkdtemp(prefix="production-", dir=ctx.files.scratch_dir()))
    try:
        return scratch, [_job(ctx, line, i, file_format, scratch) for i, line in enumerate(lines)]
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _job(ctx: StepContext, line: Any, index: int, file_format: str, scratch: Path) -> LineJob:
    """A worker job for one order line. Its parameters are checked where it is built, in the
    worker process (``run_line``): intake checked them already, and the check of an engraved
    text draws its letters, which is CPU work."""
    if not isinstance(line, dict):
        raise PermanentStepError(f"order line {index} is not an object", error_type="parameters")
    line_id = str(line.get("id", index + 1))
    if isinstance(line.get("productVersion"), int):
        return _model_job(ctx, line, line_id, file_format, scratch)
    try:
        product = get(str(line.get("product")))
    except UnknownProduct as exc:
        raise PermanentStepError(
            f'line "{line_id}": {exc}', error_type="parameters", details={"line": line_id}
        ) from exc
    parameters = line.get("parameters") or {}
    if not isinstance(parameters, dict):
        message = "must be an object of parameter values"
        raise _failure_for(line_id, product.name, "", message, 1)
    stem = safe_part(line_id)
    return LineJob(line_id, import_path(product), parameters, file_format, str(scratch), stem)


def _model_job(
    ctx: StepContext, line: dict[str, Any], line_id: str, file_format: str, scratch: Path
) -> LineJob:
    """The job of a line of the tenant's own product, at the version intake pinned. Its
    parameters were checked at intake against that very version."""
    name, version = str(line.get("product")), int(line["productVersion"])
    try:
        model = local_model(
            ctx.files, ctx.settings.product_cache_dir, ctx.tenant or "default", name, version
        )
    except NotFound as exc:
        raise PermanentStepError(
            f'line "{line_id}": product {name!r} version {version}: {exc.message}',
            error_type="parameters",
            details={"line": line_id},
        ) from exc
    settings = ctx.settings
    job = ModelJob(
        str(model.folder),
        model.main,
        model.parts,
        settings.scad_renderer,
        settings.scad_memory_mb,
        max(0.1, ctx.timeout_s - RENDER_MARGIN_S),
    )
    parameters = dict(line.get("parameters") or {})
    return LineJob(line_id, "", parameters, file_format, str(scratch), safe_part(line_id), job)


def _failure(job: LineJob, failure: LineFailure) -> PermanentStepError:
    if failure.error_type == "parameters":
        parameter, count = failure.parameter or "", failure.problems
        return _failure_for(job.line_id, failure.product, parameter, failure.message, count)
    return PermanentStepError(
        f'line "{job.line_id}": {failure.message}',
        error_type=failure.error_type,
        details={"line": job.line_id},
    )


def _failure_for(
    line_id: str, product: str | None, parameter: str, message: str, count: int
) -> PermanentStepError:
    what = f" ({product})" if product else ""
    more = f" (and {count - 1} more problems)" if count > 1 else ""
    return PermanentStepError(
        f'line "{line_id}"{what}: parameter {parameter or "parameters"}: {message}{more}',
        error_type="parameters",
        details={"line": line_id, "parameter": parameter},
    )


def _store_and_clean(
    ctx: StepContext,
    jobs: list[LineJob],
    outputs: list[list[PartOutput]],
    file_format: str,
    scratch: Path,
) -> list[dict[str, Any]]:
    """``_store``, then the scratch folder removed: one trip to a thread for both."""
    try:
        return _store(ctx, jobs, outputs, file_format)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _store(
    ctx: StepContext, jobs: list[LineJob], outputs: list[list[PartOutput]], file_format: str
) -> list[dict[str, Any]]:
    """Put every file and preview in the store; the records the order's ``files`` list gets."""
    prefix = "/".join(
        safe_part(str(part)) for part in (ctx.tenant or "default", ctx.order.get("id", "order"))
    )
    records = []
    for job, parts in zip(jobs, outputs, strict=True):
        for output in parts:
            records.append(_put(ctx.files, prefix, job, output, file_format))
    return records


def _put(
    files: FileStore, prefix: str, job: LineJob, output: PartOutput, file_format: str
) -> dict[str, Any]:
    kind = FORMATS[file_format]
    name = f"{job.stem}-{safe_part(output.part)}"
    key, preview_key = f"{prefix}/{name}.{kind.extension}", f"{prefix}/{name}.png"
    files.put(key, Path(output.path))
    files.put(preview_key, Path(output.preview_path))
    stats = output.stats
    return {
        "name": f"{name}.{kind.extension}",
        "key": key,
        "format": file_format,
        "contentType": kind.content_type,
        "sha256": output.sha256,
        "bytes": output.bytes,
        "triangles": stats.triangles,
        "volumeMm3": round(stats.volume_mm3, 3),
        "bbox": {"min": list(stats.bbox_min), "max": list(stats.bbox_max)},
        "line": job.line_id,
        "part": output.part,
        "preview": preview_key,
        **({"renderer": output.renderer} if output.renderer else {}),
    }
