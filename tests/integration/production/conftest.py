"""A started ProductionStep with a real process pool, and a context to run it with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fabflow.files import LocalFileStore
from fabflow.flows.options import GenerateProductionFilesOptions
from fabflow.settings import Settings
from fabflow.steps.base import StepContext
from fabflow.steps.production import ProductionStep

MakeContext = Callable[..., StepContext]


@pytest.fixture
def file_store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
async def production_step(tmp_path: Path) -> AsyncIterator[ProductionStep]:
    step = ProductionStep(Settings(data_dir=tmp_path, production_processes=2))
    await step.start()
    yield step
    await step.close()


@pytest.fixture
def make_context(file_store: LocalFileStore, tmp_path: Path) -> MakeContext:
    def make(
        lines: list[dict[str, Any]], file_format: str = "stl", timeout_s: float = 60.0
    ) -> StepContext:
        order = {"id": "ord_1", "status": "new", "lines": lines}
        return StepContext(
            order=order,
            flow={"id": "default", "name": "default", "version": 1},
            step_id="make-files",
            step_type="generate-production-files",
            success_status="files-ready",
            options=GenerateProductionFilesOptions(file_format=file_format),  # type: ignore[arg-type]
            timeout_s=timeout_s,
            idempotency_key="idem-1",
            attempt=1,
            settings=Settings(data_dir=tmp_path),
            files=file_store,
            tenant="acme",
        )

    return make
