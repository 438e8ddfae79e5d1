"""The generate-production-files step with real worker processes and a real file store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trimesh
from production_slow_plugin import Pair, Spin  # type: ignore[import-not-found]  # sibling module

from fabflow.errors import PermanentStepError, TransientStepError
from fabflow.files import LocalFileStore
from fabflow.production import registry
from fabflow.steps.base import StepContext
from fabflow.steps.production import ProductionStep

MakeContext = Callable[..., StepContext]
NAMEPLATE = {"id": "1", "product": "nameplate", "quantity": 2, "parameters": {"text": "Ada"}}


async def test_each_line_becomes_checked_files_with_a_full_record(
    production_step: ProductionStep, make_context: MakeContext, file_store: LocalFileStore
) -> None:
    box = {"id": "2", "product": "box", "parameters": {"lid": True}}
    result = await production_step.execute(make_context([NAMEPLATE, box]))

    assert [(r["line"], r["part"]) for r in result.files] == [
        ("1", "nameplate"),
        ("2", "box"),
        ("2", "lid"),
    ]
    assert result.details["lines"] == 2 and result.details["files"] == 3
    record = result.files[0]
    assert record["key"] == "acme/ord_1/1-nameplate.stl"
    assert record["preview"] == "acme/ord_1/1-nameplate.png"
    assert record["contentType"] == "model/stl" and record["format"] == "stl"
    path = file_store.local_path(record["key"])
    assert path is not None
    data = path.read_bytes()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["bytes"] == len(data) == 84 + 50 * record["triangles"]
    mesh: Any = trimesh.load(path)
    assert mesh.volume == pytest.approx(record["volumeMm3"], rel=1e-4)
    assert record["bbox"] == {"min": [-40.0, -12.5, 0.0], "max": [40.0, 12.5, 3.5]}
    assert file_store.exists(record["preview"])
    assert not any(file_store.scratch_dir().iterdir())  # scratch cleaned up


async def test_a_rerun_replaces_the_files_under_the_same_keys(
    production_step: ProductionStep, make_context: MakeContext
) -> None:
    first = await production_step.execute(make_context([NAMEPLATE], "obj"))
    second = await production_step.execute(make_context([NAMEPLATE], "obj"))
    assert [r["key"] for r in first.files] == ["acme/ord_1/1-nameplate.obj"]
    assert [(r["key"], r["sha256"]) for r in first.files] == [
        (r["key"], r["sha256"]) for r in second.files
    ]


async def test_bad_parameters_are_a_permanent_error_naming_line_and_parameter(
    production_step: ProductionStep, make_context: MakeContext
) -> None:
    line = {"id": "7", "product": "nameplate", "parameters": {"text": "Ada 中", "width": 80}}
    with pytest.raises(PermanentStepError) as caught:
        await production_step.execute(make_context([NAMEPLATE, line]))
    assert caught.value.error_type == "parameters"
    assert 'line "7"' in caught.value.message and "parameter text" in caught.value.message
    assert "U+4E2D" in caught.value.message


async def test_a_part_that_fails_the_mesh_check_is_never_delivered(
    production_step: ProductionStep, make_context: MakeContext, file_store: LocalFileStore
) -> None:
    registry.register(Pair)
    try:
        line = {"id": "3", "product": "test-pair", "parameters": {"pidFile": "unused"}}
        with pytest.raises(PermanentStepError) as caught:
            await production_step.execute(make_context([line]))
    finally:
        registry.unregister(Pair.name)
    assert caught.value.error_type == "mesh_check"
    assert "2 separate bodies" in caught.value.message
    assert not file_store.exists("acme/ord_1/3-pair.stl")


async def test_a_runaway_generation_is_killed_at_the_timeout_and_the_step_carries_on(
    production_step: ProductionStep, make_context: MakeContext, tmp_path: Path
) -> None:
    registry.register(Spin)
    pid_file = tmp_path / "spin.pid"
    line = {"id": "9", "product": "test-spin", "parameters": {"pidFile": str(pid_file)}}
    started = time.monotonic()
    try:
        with pytest.raises(TransientStepError) as caught:
            await production_step.execute(make_context([line], timeout_s=1.5))
    finally:
        registry.unregister(Spin.name)
    assert caught.value.error_type == "timeout"
    assert time.monotonic() - started < 5
    pid = int(pid_file.read_text())
    assert pid != os.getpid()  # it ran in a worker process
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left spinning
        os.kill(pid, 0)
    # The next attempt is served by the pool's replacement process.
    result = await production_step.execute(make_context([NAMEPLATE], timeout_s=30))
    assert [r["part"] for r in result.files] == ["nameplate"]


@pytest.mark.parametrize("file_format", ["3mf", "ply", "glb", "stl-ascii"])
async def test_extension_formats_are_stored_with_their_own_type(
    production_step: ProductionStep,
    make_context: MakeContext,
    file_store: LocalFileStore,
    file_format: str,
) -> None:
    result = await production_step.execute(make_context([NAMEPLATE], file_format))
    record = result.files[0]
    path = file_store.local_path(record["key"])
    assert path is not None and path.stat().st_size == record["bytes"]
    loaded: Any = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == record["triangles"]
