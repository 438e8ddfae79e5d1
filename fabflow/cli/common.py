"""What several commands share: settings, logging, the store, reading JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from fabflow import logs
from fabflow.cli.app import EXIT_CONFIG
from fabflow.errors import ConfigError, StoreError
from fabflow.settings import Settings
from fabflow.store.repository import Store


def settings_from_env(**overrides: Any) -> Settings:
    try:
        settings = Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    logs.configure(settings.log_format, settings.log_level)
    return settings


def with_secret_key(settings: Settings) -> Settings:
    """``settings`` with the key of tenant secrets: FABFLOW_SECRET_KEY, else the data
    folder's ``secret.key``, made on first use (see ``fabflow.store.secrets``)."""
    from fabflow.store.secrets import box, with_key

    try:
        keyed = with_key(settings)
        box(keyed.secret_key)  # a malformed key is told now, not at the first secret
    except (ConfigError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    return keyed


def open_store(settings: Settings, pre_ping: bool = True) -> Store:
    try:
        return Store.open(settings, pre_ping)
    except (StoreError, OSError) as exc:
        typer.echo(f"error: cannot open the store: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except Exception as exc:  # the driver's own errors: unreachable server, bad URL
        typer.echo(f"error: cannot open the store at {_safe_url(settings)}: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _safe_url(settings: Settings) -> str:
    url = settings.effective_database_url
    if "@" in url:  # never print a password
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def read_json(path: str) -> tuple[Any, str | None]:
    """The decoded JSON of ``path``, or an error message saying what is wrong and where."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror or exc}"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
