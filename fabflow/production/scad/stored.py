"""Where a product version's files lie in the file store, and a worker's local copy of them.

Each version has a zip (its files) and a manifest (``main``, ``parts``, ``sha256``,
``archive``) in the file store, so a worker makes an order line's files with no database. A
worker unpacks each version once into ``<data_dir>/product-cache/<sha256>``: a version never
changes, so the copy is shared by every line and attempt that needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabflow.errors import NotFound
from fabflow.files import FileStore, safe_part
from fabflow.production.scad.bundle import bundle_from_archive


@dataclass(frozen=True)
class StoredModel:
    """A product version unpacked on this machine."""

    folder: Path
    main: str
    parts: tuple[str, ...]
    sha256: str


def product_folder(tenant_id: str, name: str) -> str:
    """Where a product's files lie in the file store."""
    return f"products/{safe_part(tenant_id)}/{safe_part(name)}"


def manifest_key(tenant_id: str, name: str, version: int) -> str:
    return f"{product_folder(tenant_id, name)}/{version}.json"


def local_model(
    files: FileStore, cache: Path, tenant_id: str, name: str, version: int
) -> StoredModel:
    """The product version's files in a local folder (unpacked on first use)."""
    manifest = _read_json(files, manifest_key(tenant_id, name, version))
    folder = cache / str(manifest["sha256"])
    if not folder.is_dir():
        _unpack(files, str(manifest["archive"]), str(manifest["main"]), folder)
    parts = tuple(str(part) for part in manifest["parts"])
    return StoredModel(folder, str(manifest["main"]), parts, str(manifest["sha256"]))


def _read_json(files: FileStore, key: str) -> dict[str, Any]:
    if not files.exists(key):
        raise NotFound(f"the product's files are not in the file store ({key})")
    data: dict[str, Any] = json.loads(b"".join(files.iter_bytes(key)))
    return data


def _unpack(files: FileStore, key: str, main: str, folder: Path) -> None:
    """Unpack beside ``folder`` and rename into place: a reader never sees half a copy."""
    if not files.exists(key):
        raise NotFound(f"the product's files are not in the file store ({key})")
    bundle = bundle_from_archive(b"".join(files.iter_bytes(key)), main)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder.parent))
    bundle.extract(staging)
    try:
        os.rename(staging, folder)
    except OSError:  # another process unpacked it first: theirs is the same files
        shutil.rmtree(staging, ignore_errors=True)
