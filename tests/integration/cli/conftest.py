"""Fixtures for CLI tests: the commands run in-process on the test's own store."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fabflow.cli.app import app
from fabflow.cli.main import _register
from fabflow.settings import Settings

# A flow's one step for the commands' tests: an email (nothing runs it there).
STEP: dict[str, Any] = {
    "stepDefinitionId": "tell",
    "type": "send-email",
    "successStatus": "Told",
    "options": {"recipients": ["ops@example.com"], "subject": "Order", "message": "Hi"},
}


def fabflow(*args: str) -> Result:
    """Run the CLI in-process; the logging it sets up (on the runner's stderr) is undone."""
    _register()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def env(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the same store as the test, through the environment."""
    monkeypatch.setenv("FABFLOW_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("FABFLOW_DATABASE_URL", db_settings.database_url)
