"""Tenants' secrets: values templates read as ``secrets.NAME``, encrypted at rest.

Values are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under
``FABFLOW_SECRET_KEY``: comma-separated keys, the first encrypts, every one decrypts (rotate by
putting a new key first, then setting each secret again). With no key set, the commands that
run fabflow (serve, demo, worker, ``secrets``) use ``<data_dir>/secret.key``, made on first
start with mode 0600, so a single-machine install works with no set-up; several machines on
one PostgreSQL must share one ``FABFLOW_SECRET_KEY``.

Only names and times ever leave this module toward people; values leave it only decrypted
for a worker (``load_secrets``) and are never logged.
"""

from __future__ import annotations

import os
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, delete, insert, select, update

from fabflow.errors import ConfigError, InvalidInput, NotFound, Problem
from fabflow.flows.model import Flow
from fabflow.resources import iso
from fabflow.settings import Settings
from fabflow.store import audit
from fabflow.store.repository import Store
from fabflow.store.schema import tenant_secrets

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
NAME_RULE = (
    "1-100 letters, digits or '_', not starting with a digit (a template reads secrets.NAME)"
)
MAX_VALUE_CHARS = 16_384
KEY_FILE = "secret.key"


# -- the key ------------------------------------------------------------------------------


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def with_key(settings: Settings) -> Settings:
    """``settings`` with a secret key: FABFLOW_SECRET_KEY, else the data folder's key file,
    made (mode 0600) when there is none yet."""
    if settings.secret_key:
        return settings
    path = key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: theirs
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(Fernet.generate_key().decode("ascii") + "\n")
    return settings.with_(secret_key=path.read_text(encoding="ascii").strip())


class SecretBox:
    """Encrypts with the first key of FABFLOW_SECRET_KEY, decrypts with any of them."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ConfigError(
                "FABFLOW_SECRET_KEY is not set: tenant secrets cannot be encrypted or read"
                " (fabflow serve makes one in the data folder; see docs/settings.md)"
            )
        try:
            self._fernet = MultiFernet([Fernet(k) for k in parts])
        except ValueError:
            raise ConfigError(
                "FABFLOW_SECRET_KEY must be Fernet keys (32 url-safe base64-encoded bytes),"
                " comma-separated; make one with: python -c 'from cryptography.fernet import"
                " Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, name: str, token: str) -> str:
        """The value of secret ``name``; ConfigError (never showing the token) if no key
        opens it."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ConfigError(
                f"the secret {name} cannot be decrypted with FABFLOW_SECRET_KEY: it was stored"
                " under another key; set that key (or add it after a comma), or set the"
                " secret again"
            ) from None


@lru_cache(maxsize=8)
def box(keys: str) -> SecretBox:
    """The box of ``keys`` (cached: building Fernet objects is not free)."""
    return SecretBox(keys)


# -- names and values ---------------------------------------------------------------------


def check_name(name: str, pointer: str = "/name") -> str:
    if not NAME.fullmatch(name):
        message = f"invalid secret name {name[:120]!r}: {NAME_RULE}"
        raise InvalidInput(message, [Problem(pointer, message)])
    return name


def check_value(value: str, pointer: str = "/value") -> str:
    if not value:
        message = "a secret's value must not be empty"
    elif len(value) > MAX_VALUE_CHARS:
        message = f"a secret's value is at most {MAX_VALUE_CHARS} characters"
    else:
        return value
    raise InvalidInput(message, [Problem(pointer, message)])


def _listed(row: Any) -> dict[str, Any]:
    return {"name": row.name, "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at)}


# -- the store ----------------------------------------------------------------------------


def set_secret(
    store: Store,
    tenant_id: str,
    name: str,
    value: str,
    keys: str | None = None,
    by: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Set (or replace) a secret, encrypted with ``keys`` (default: the store's settings'):
    ``(its listing, whether it is new)``. The audit trail records its name and who set it."""
    check_name(name)
    token = box(store.settings.secret_key if keys is None else keys).encrypt(check_value(value))
    now = time.time()
    where = (tenant_secrets.c.tenant_id == tenant_id) & (tenant_secrets.c.name == name)
    with store.write() as conn:
        changed = conn.execute(
            update(tenant_secrets).where(where).values(value=token, updated_at=now)
        ).rowcount
        if not changed:
            row = {"tenant_id": tenant_id, "name": name, "value": token}
            conn.execute(insert(tenant_secrets).values(**row, created_at=now, updated_at=now))
        found = conn.execute(select(*_LISTED).where(where)).one()
        kind = "secret_replaced" if changed else "secret_created"
        audit.record(conn, tenant_id, kind, f"secret {name}", {"name": name}, by)
    return _listed(found), not changed


_LISTED = (tenant_secrets.c.name, tenant_secrets.c.created_at, tenant_secrets.c.updated_at)


def list_secrets(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's secrets by name: names and times, never values."""
    query = (
        select(*_LISTED)
        .where(tenant_secrets.c.tenant_id == tenant_id)
        .order_by(tenant_secrets.c.name)
    )
    with store.read() as conn:
        return [_listed(row) for row in conn.execute(query)]


def delete_secret(store: Store, tenant_id: str, name: str, by: str | None = None) -> None:
    """Delete a secret; NotFound when the tenant has none of that name."""
    where = (tenant_secrets.c.tenant_id == tenant_id) & (tenant_secrets.c.name == name)
    with store.write() as conn:
        if not conn.execute(delete(tenant_secrets).where(where)).rowcount:
            raise NotFound(f"no secret {name[:120]!r}")
        audit.record(conn, tenant_id, "secret_deleted", f"secret {name}", {"name": name}, by)


def load_secrets(conn: Connection, keys: str, tenant_id: str) -> dict[str, str]:
    """The tenant's secrets decrypted, by name (for a worker); ConfigError when one cannot
    be decrypted or no key is set."""
    query = select(tenant_secrets.c.name, tenant_secrets.c.value).where(
        tenant_secrets.c.tenant_id == tenant_id
    )
    rows = conn.execute(query).all()
    if not rows:
        return {}
    opened = box(keys)
    return {row.name: opened.decrypt(row.name, row.value) for row in rows}


_MENTION = re.compile(r"\bsecrets\b")


def steps_reading_secrets(flow: Flow) -> frozenset[str]:
    """The ids of the flow's steps whose options mention ``secrets`` (only those get them:
    the others' attempts load and decrypt nothing)."""
    return frozenset(
        step.step_definition_id
        for step in flow.steps
        if _MENTION.search(step.options.model_dump_json(by_alias=True))
    )
