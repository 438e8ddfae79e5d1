"""Where production files live: a folder by default, any shared store at scale.

``FileStore`` is the whole interface the rest of fabflow uses. ``LocalFileStore`` keeps files
in a folder (mount the same folder on every machine to share it). An S3-compatible store
implements the same four methods (put = upload of the finished temp file, open = streamed GET).
Keys are relative POSIX paths made by fabflow (never from user input without ``safe_key``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_part(text: str) -> str:
    """A path segment made safe: no separators, no dot-dot, nothing exotic."""
    cleaned = _SAFE.sub("_", text).strip("._") or "_"
    return cleaned[:100]


class FileStore(Protocol):
    def put(self, key: str, source: Path) -> None:
        """Store the finished file at ``source`` under ``key`` atomically (replaces)."""

    def exists(self, key: str) -> bool: ...

    def iter_bytes(self, key: str, chunk_size: int = 65536) -> Iterator[bytes]: ...

    def local_path(self, key: str) -> Path | None:
        """A local path for reading, when the store has one (None for remote stores)."""

    def scratch_dir(self) -> Path:
        """A local folder where files are built before ``put``."""


class LocalFileStore:
    """Files in a folder; ``put`` renames within one filesystem: readers never see half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"file key escapes the store: {key!r}")
        return path

    def put(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # same filesystem (the scratch folder is inside root)
        except OSError:
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_bytes(self, key: str, chunk_size: int = 65536) -> Iterator[bytes]:
        with self._path(key).open("rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def scratch_dir(self) -> Path:
        path = self.root / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path
