"""Every help text of the CLI reads as written: `--help` renders with Rich markup, which
swallows anything that looks like a tag (``[env FABFLOW_X]`` once printed as "live .")."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from fabflow.cli.app import app
from fabflow.cli.main import _register


def _helps(command: Any, path: str) -> list[tuple[str, str]]:
    found = [(path, command.help or "")]
    found += [(f"{path} {p.name}", p.help) for p in command.params if getattr(p, "help", None)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _helps(sub, f"{path} {name}")
    return found


def test_no_help_text_loses_words_to_markup() -> None:
    _register()
    helps = _helps(typer.main.get_command(app), "fabflow")
    assert len(helps) > 50  # every command and option was reached
    garbled = [(where, text) for where, text in helps if Text.from_markup(text).plain != text]
    assert garbled == []
