"""Settings: environment variables prefixed ``FABFLOW_``, read once and passed down.

Nothing reads the environment at import time; ``Settings.from_env()`` is called at the edges
(the CLI, the API factory, tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fabflow.errors import ConfigError

PREFIX = "FABFLOW_"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with its environment variable in the comment."""

    data_dir: Path = Path("./fabflow-data")  # FABFLOW_DATA_DIR
    database_url: str = ""  # FABFLOW_DATABASE_URL; empty: SQLite file in data_dir
    sqlite_synchronous: str = "normal"  # FABFLOW_SQLITE_SYNCHRONOUS: normal | full
    lease_seconds: float = 30.0  # FABFLOW_LEASE_SECONDS
    poll_seconds: float = 0.25  # FABFLOW_POLL_SECONDS: idle poll when no wake-up arrives
    concurrency: int = 16  # FABFLOW_CONCURRENCY
    # FABFLOW_TENANT_SHARE: the fraction of a worker's slots one tenant may hold while another
    # tenant has runnable work (fabflow.engine.fairness); alone, a tenant may use every slot
    tenant_share: float = 0.5
    shutdown_grace_seconds: float = 30.0  # FABFLOW_SHUTDOWN_GRACE_SECONDS
    retry_max_attempts: int = 3  # FABFLOW_RETRY_MAX_ATTEMPTS (default policy)
    retry_initial_delay_ms: int = 1000  # FABFLOW_RETRY_INITIAL_DELAY_MS
    retry_backoff: float = 2.0  # FABFLOW_RETRY_BACKOFF
    retry_max_delay_ms: int = 60_000  # FABFLOW_RETRY_MAX_DELAY_MS
    default_step_timeout_ms: int = 300_000  # FABFLOW_DEFAULT_STEP_TIMEOUT_MS (step has none)
    default_wait_ms: int = 7 * 24 * 3600 * 1000  # FABFLOW_DEFAULT_WAIT_MS: a wait's deadline
    # FABFLOW_CALLBACK_SECRET: the key of callback tokens; empty: one the store makes and keeps
    callback_secret: str = ""
    outbound_allow: tuple[str, ...] = ()  # FABFLOW_OUTBOUND_ALLOW: hosts and CIDRs
    signing_secret: str = ""  # FABFLOW_SIGNING_SECRET
    # FABFLOW_SECRET_KEY: Fernet key(s) of tenant secrets, comma-separated, the first encrypts;
    # empty: serve, demo, worker and `secrets set` use (or make) <data_dir>/secret.key
    secret_key: str = ""
    smtp_url: str = ""  # FABFLOW_SMTP_URL
    mail_from: str = "fabflow@localhost"  # FABFLOW_MAIL_FROM
    smtp_ca_file: str = ""  # FABFLOW_SMTP_CA_FILE: extra CA bundle for STARTTLS/SMTPS
    public_url: str = "http://127.0.0.1:8000"  # FABFLOW_PUBLIC_URL: base of download links
    file_link_seconds: int = 7 * 24 * 3600  # FABFLOW_FILE_LINK_SECONDS: a file link's lifetime
    max_body_bytes: int = 1_048_576  # FABFLOW_MAX_BODY_BYTES
    production_processes: int = 2  # FABFLOW_PRODUCTION_PROCESSES
    # FABFLOW_SCAD_RENDERER: how a product made from an OpenSCAD model renders: auto (the
    # fast path on manifold3d, the openscad program for what it cannot evaluate), manifold
    # (the fast path or an error), openscad (the program alone)
    scad_renderer: str = "auto"
    scad_memory_mb: int = 2048  # FABFLOW_SCAD_MEMORY_MB: the openscad program's memory limit
    log_format: str = "text"  # FABFLOW_LOG_FORMAT: text | json
    log_level: str = "INFO"  # FABFLOW_LOG_LEVEL
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values).validated()

    def validated(self) -> Settings:
        if self.sqlite_synchronous not in ("normal", "full"):
            raise ConfigError(
                "FABFLOW_SQLITE_SYNCHRONOUS must be 'normal' or 'full',"
                f" not {self.sqlite_synchronous!r}"
            )
        if self.lease_seconds <= 0 or self.concurrency < 1:
            raise ConfigError("FABFLOW_LEASE_SECONDS must be > 0 and FABFLOW_CONCURRENCY >= 1")
        if not 0 < self.tenant_share <= 1:
            raise ConfigError(
                f"FABFLOW_TENANT_SHARE must be above 0 and at most 1, not {self.tenant_share}"
            )
        if self.file_link_seconds < 1:
            raise ConfigError("FABFLOW_FILE_LINK_SECONDS must be at least 1")
        if self.scad_renderer not in ("auto", "manifold", "openscad"):
            raise ConfigError(
                "FABFLOW_SCAD_RENDERER must be 'auto', 'manifold' or 'openscad',"
                f" not {self.scad_renderer!r}"
            )
        if self.log_format not in ("text", "json"):
            raise ConfigError(
                f"FABFLOW_LOG_FORMAT must be 'text' or 'json', not {self.log_format!r}"
            )
        return self

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return _normalise_db_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'fabflow.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def product_cache_dir(self) -> Path:
        """Each product version's files, unpacked once per machine."""
        return self.data_dir / "product-cache"


def _normalise_db_url(url: str) -> str:
    # Users write postgresql://; SQLAlchemy needs the driver named to pick psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_text = str(type_name)
    try:
        if type_text == "Path":
            return Path(raw)
        if type_text == "int":
            return int(raw)
        if type_text == "float":
            return float(raw)
        if type_text.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}: cannot read {raw!r} as {type_text}") from exc
    return raw
