"""A product's files: one main ``.scad`` and what it reads, as a folder, an upload or a zip.

Every path is relative and plain (no ``..``, no absolute path, no backslash, no link), so a
bundle unpacks only inside its own folder. Only the kinds of file a model reads are kept (a
README or a licence beside the model is left out, and said so), and the whole is bounded: file
count, bytes, and the unpacked size of an uploaded zip.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fabflow.errors import InvalidProduct, Problem

KINDS = frozenset(
    {
        ".scad",
        ".stl",
        ".3mf",
        ".off",
        ".obj",
        ".amf",
        ".svg",
        ".dxf",
        ".ttf",
        ".otf",
        ".dat",
        ".png",
    }
)
MAX_FILES = 200
MAX_BYTES = 20 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip times: the same files make the same archive


@dataclass(frozen=True)
class ProductBundle:
    """The files of one product version: ``files`` maps a relative POSIX path to its bytes."""

    main: str
    files: dict[str, bytes]
    skipped: tuple[str, ...] = ()  # files left out: not a kind a model reads (README, LICENSE)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.archive()).hexdigest()

    def archive(self) -> bytes:
        """The files as a zip whose bytes depend on the files alone."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(self.files):
                info = zipfile.ZipInfo(path, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, self.files[path])
        return out.getvalue()

    def sources(self) -> dict[str, str]:
        """The text of every ``.scad`` file by path."""
        return {
            path: data.decode("utf-8", errors="replace")
            for path, data in self.files.items()
            if path.endswith(".scad")
        }

    def listing(self) -> list[dict[str, object]]:
        return [{"path": path, "bytes": len(self.files[path])} for path in sorted(self.files)]

    def extract(self, folder: Path) -> None:
        """Write the files under ``folder`` (which must exist)."""
        for path, data in self.files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def bundle_from_path(path: Path, main: str | None = None) -> ProductBundle:
    """The bundle of a ``.scad`` file alone, of a folder, or of a ``.zip``."""
    if path.is_dir():
        items = [(_relative(file, path), file) for file in sorted(path.rglob("*"))]
        problems = [
            Problem(rel, "links are not taken: copy the file into the folder")
            for rel, file in items
            if file.is_symlink()
        ]
        if problems:
            raise InvalidProduct(f"{path}: {problems[0].message}", problems)
        files = [(rel, file.read_bytes()) for rel, file in items if file.is_file()]
        return _bundle([(rel, data) for rel, data in files if not _hidden(rel)], main)
    if not path.is_file():
        raise InvalidProduct(f"{path}: no such file or folder")
    return bundle_from_upload([(path.name, path.read_bytes())], main)


def bundle_from_upload(
    items: Iterable[tuple[str, bytes]], main: str | None = None
) -> ProductBundle:
    """The bundle of uploaded files: one ``.zip`` (unpacked), or files with relative names."""
    items = list(items)
    if len(items) == 1 and items[0][0].lower().endswith(".zip"):
        return bundle_from_archive(items[0][1], main)
    return _bundle(items, main)


def bundle_from_archive(data: bytes, main: str | None = None) -> ProductBundle:
    """The bundle in a zip archive (a folder zipped whole is unwrapped)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidProduct(f"not a zip archive: {exc}") from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) > MAX_FILES * 2 or sum(i.file_size for i in entries) > MAX_BYTES:
            raise InvalidProduct(f"the archive unpacks to more than {MAX_BYTES >> 20} MiB")
        files = [(info.filename, archive.read(info)) for info in entries]
    files = [(name, body) for name, body in files if not _hidden(name)]
    return _bundle(_unwrapped(files), main)


def _unwrapped(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A zip of a folder holds ``folder/...``: drop that one shared top folder."""
    tops = {name.split("/", 1)[0] for name, _ in files}
    if len(tops) == 1 and all("/" in name for name, _ in files):
        return [(name.split("/", 1)[1], body) for name, body in files]
    return files


def _bundle(items: list[tuple[str, bytes]], main: str | None) -> ProductBundle:
    problems = [p for name, _ in items if (p := _path_problem(name))]
    skipped = tuple(
        sorted(name for name, _ in items if PurePosixPath(name).suffix.lower() not in KINDS)
    )
    items = [(name, body) for name, body in items if name not in skipped]
    if len(items) > MAX_FILES:
        problems.append(Problem("", f"{len(items)} files: a product has at most {MAX_FILES}"))
    total = sum(len(body) for _, body in items)
    if total > MAX_BYTES:
        problems.append(Problem("", f"{total} bytes: a product has at most {MAX_BYTES >> 20} MiB"))
    if problems:
        raise InvalidProduct(f"{problems[0].pointer or 'files'}: {problems[0].message}", problems)
    files = {str(PurePosixPath(name)): body for name, body in items}
    return ProductBundle(_main(files, main), files, skipped)


def _path_problem(name: str) -> Problem | None:
    path = PurePosixPath(name)
    if "\\" in name or name.startswith("/") or path.is_absolute() or ":" in path.parts[0]:
        return Problem(name, "a file's path must be relative to the product's folder")
    if ".." in path.parts:
        return Problem(name, "a file's path must not climb out of the product's folder (..)")
    return None


def _main(files: dict[str, bytes], main: str | None) -> str:
    scad = sorted(path for path in files if path.endswith(".scad"))
    if main is not None:
        if main not in files or not main.endswith(".scad"):
            raise InvalidProduct(f"{main}: the main file is not among the .scad files ({scad})")
        return main
    top = [path for path in scad if "/" not in path]
    if len(top) == 1:
        return top[0]
    if "main.scad" in top:
        return "main.scad"
    if not scad:
        raise InvalidProduct("a product needs a .scad file, and none was given")
    raise InvalidProduct(
        f"several .scad files ({', '.join(top or scad)}): name the main one "
        "(main.scad, or --main / the upload's main field)"
    )


def _relative(file: Path, root: Path) -> str:
    return file.relative_to(root).as_posix()


def _hidden(name: str) -> bool:
    """Dot files and folders (.git, .DS_Store) and macOS zip debris are left out."""
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)
