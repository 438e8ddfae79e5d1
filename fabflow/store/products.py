"""A tenant's products made from OpenSCAD models, versioned as flows are.

Each upload of a product adds a version; the newest is current and new orders pin it (their
lines carry ``productVersion``), so a later upload never changes an accepted order's files.
The model's files live in the file store as one zip (``archive_key``); the row keeps what
intake needs without it: the parameters' JSON Schema and the main file's text.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from fabflow.errors import Conflict, InvalidProduct, NotFound, Problem
from fabflow.files import FileStore
from fabflow.production.line_check import CustomProduct, FindProduct
from fabflow.production.registry import products as builtin_products
from fabflow.production.scad.bundle import ProductBundle
from fabflow.production.scad.product import check_name, check_renders, model_of, read_model
from fabflow.production.scad.stored import manifest_key, product_folder
from fabflow.resources import iso
from fabflow.store.repository import Store
from fabflow.store.schema import product_versions as pv


@dataclass(frozen=True)
class ProductVersion:
    """One version of a tenant's product, as stored."""

    tenant_id: str
    name: str
    version: int
    title: str
    description: str
    main: str
    source: str
    parameters: dict[str, Any]
    parts: list[str]
    files: list[dict[str, Any]]
    archive_key: str
    sha256: str
    created_at: float

    def resource(self) -> dict[str, Any]:
        """What the API and ``products show --json`` print (never the tenant id)."""
        return {
            "name": self.name,
            "kind": "openscad",
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "main": self.main,
            "parts": self.parts,
            "files": self.files,
            "sha256": self.sha256,
            "parametersSchema": self.parameters,
            "createdAt": iso(self.created_at),
        }


@dataclass(frozen=True)
class NewProduct:
    """What a checked upload adds: its bundle and what was read from its model."""

    bundle: ProductBundle
    title: str
    description: str
    parameters: dict[str, Any]
    parts: list[str]


def save_product(
    store: Store,
    files: FileStore,
    tenant_id: str,
    name: str,
    new: NewProduct,
    *,
    exists: bool | None = None,
) -> ProductVersion:
    """Add a version of ``name`` (version 1 if it is new). ``exists`` False refuses a product
    that exists already (Conflict), True one that does not (NotFound); None takes either."""
    archive = new.bundle.archive()
    sha = new.bundle.sha256
    with store.write() as conn:
        latest = _latest_version(conn, tenant_id, name)
        if exists is False and latest:
            raise Conflict(f"product {name!r} exists: PUT /api/products/{name} adds a version")
        if exists is True and not latest:
            raise NotFound(f"no product is named {name!r}")
        version = latest + 1
        key = f"{product_folder(tenant_id, name)}/{version}-{sha[:16]}.zip"
        _put(files, key, archive)
        manifest = {"main": new.bundle.main, "parts": new.parts, "sha256": sha, "archive": key}
        _put(files, manifest_key(tenant_id, name, version), json.dumps(manifest).encode())
        row: dict[str, Any] = {
            "tenant_id": tenant_id,
            "name": name,
            "version": version,
            "title": new.title[:200],
            "description": new.description,
            "main": new.bundle.main,
            "source": new.bundle.sources()[new.bundle.main],
            "parameters": new.parameters,
            "parts": new.parts,
            "files": new.bundle.listing(),
            "archive_key": key,
            "sha256": sha,
            "created_at": time.time(),
        }
        conn.execute(insert(pv), row)
    return ProductVersion(**row)


def _put(files: FileStore, key: str, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=files.scratch_dir())
    with os.fdopen(fd, "wb") as tmp:
        tmp.write(data)
    try:
        files.put(key, Path(name))  # moves the file when it can
    finally:
        Path(name).unlink(missing_ok=True)


def _latest_version(conn: Connection, tenant_id: str, name: str) -> int:
    query = select(func.max(pv.c.version)).where(pv.c.tenant_id == tenant_id, pv.c.name == name)
    return int(conn.execute(query).scalar() or 0)


def current_products(
    store: Store, tenant_id: str, names: Iterable[str]
) -> dict[str, ProductVersion]:
    """The current version of each of ``names`` that is one of the tenant's products."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    newest = (
        select(pv.c.name, func.max(pv.c.version).label("version"))
        .where(pv.c.tenant_id == tenant_id, pv.c.name.in_(wanted))
        .group_by(pv.c.name)
        .subquery()
    )
    query = select(pv).join(
        newest, (pv.c.name == newest.c.name) & (pv.c.version == newest.c.version)
    )
    with store.read() as conn:
        rows = conn.execute(query.where(pv.c.tenant_id == tenant_id)).mappings().all()
    return {row["name"]: ProductVersion(**row) for row in rows}


def list_products(store: Store, tenant_id: str) -> list[ProductVersion]:
    """The current version of each of the tenant's products, by name."""
    with store.read() as conn:
        names = conn.execute(
            select(pv.c.name).where(pv.c.tenant_id == tenant_id).distinct()
        ).scalars()
        wanted = list(names)
    found = current_products(store, tenant_id, wanted)
    return [found[name] for name in sorted(found)]


def product_version(
    store: Store, tenant_id: str, name: str, version: int | None = None
) -> ProductVersion:
    """One version of a product (the current one when ``version`` is None)."""
    if version is None:
        found = current_products(store, tenant_id, [name])
        if name not in found:
            raise NotFound(f"no product is named {name!r}")
        return found[name]
    query = select(pv).where(
        pv.c.tenant_id == tenant_id, pv.c.name == name, pv.c.version == version
    )
    with store.read() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"product {name!r} has no version {version}")
    return ProductVersion(**row)


def product_versions(store: Store, tenant_id: str, name: str) -> list[dict[str, Any]]:
    """Every version of a product: number, sha256 and when it was added."""
    query = (
        select(pv.c.version, pv.c.sha256, pv.c.created_at)
        .where(pv.c.tenant_id == tenant_id, pv.c.name == name)
        .order_by(pv.c.version)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        raise NotFound(f"no product is named {name!r}")
    return [{"version": v, "sha256": sha, "createdAt": iso(at)} for v, sha, at in rows]


def add_product(
    store: Store,
    files: FileStore,
    tenant_id: str,
    name: str,
    bundle: ProductBundle,
    *,
    title: str | None = None,
    exists: bool | None = None,
    timeout: float = 120.0,
) -> tuple[ProductVersion, dict[str, str]]:
    """Check a model whole (its name, parameters, the files it reads, and that every part
    renders with its defaults into a printable solid) and add it as the product's next
    version; also the renderer that made each part. Raises InvalidProduct with every problem."""
    check_name(name)
    if name in builtin_products():
        raise InvalidProduct(
            f"{name!r} is a built-in product: give yours another name",
            [Problem("/name", "the name of a built-in product")],
        )
    model = read_model(bundle)
    renderers = check_renders(
        bundle,
        model,
        mode=store.settings.scad_renderer,
        timeout=timeout,
        memory_mb=store.settings.scad_memory_mb,
    )
    label = title or name
    new = NewProduct(bundle, label, model.description, model.schema(label), list(model.parts))
    return save_product(store, files, tenant_id, name, new, exists=exists), renderers


def find_product(store: Store, tenant_id: str) -> FindProduct:
    """Intake's lookup of the tenant's own products (see ``check_order``)."""

    def find(name: str, version: int | None) -> CustomProduct | None:
        if version is None:
            found = current_products(store, tenant_id, [name]).get(name)
            if found is None:
                return None
        else:
            found = product_version(store, tenant_id, name, version)
        model = model_of(found.main, found.source)
        return CustomProduct(found.name, found.version, model.problems)

    return find
