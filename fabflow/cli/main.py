"""Entry point of the ``fabflow`` console script: registers every command module."""

from __future__ import annotations

import importlib

from fabflow.cli.app import app

# Each module adds its commands to ``app`` when imported. A module that is not written yet
# is skipped so that the rest of the CLI keeps working during development.
_COMMAND_MODULES = (
    "validate",
    "run",
    "worker",
    "serve",
    "admin",
    "confirmations",
    "secrets",
    "webhooks",
    "products",
    "flows",
    "audit",
)


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"fabflow.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fabflow.cli.{name}":
                raise


def main() -> None:
    _register()
    app()
