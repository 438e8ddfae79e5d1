"""Fixtures of the flow-language tests: the CLI runner and the spec's example flows."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fabflow.cli.app import app
from fabflow.cli.main import _register

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "spec"
RunCli = Callable[..., Result]  # the `cli` fixture of conftest.py


@pytest.fixture(scope="session")
def cli() -> RunCli:
    """Run ``fabflow ARGS...`` in-process; the result has exit_code and stdout."""
    _register()
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin)

    return run


@pytest.fixture()
def full_example() -> list[dict[str, Any]]:
    """The spec's full example flow, decoded (a fresh copy per test, free to mutate)."""
    return copy.deepcopy(json.loads((SPEC_DIR / "full-example.json").read_text()))


@pytest.fixture()
def write_flow(tmp_path: Path) -> Callable[[Any], str]:
    """Write a flow document (or raw text) to a file and return its path."""

    def write(doc: Any, name: str = "flow.json") -> str:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return str(path)

    return write
