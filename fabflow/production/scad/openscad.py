"""Running the ``openscad`` program on a product's model, fenced in.

Each run gets a private copy of the product's folder (regular files only: a symbolic link in an
upload is not followed) and works there. Around the program:

- bubblewrap (``bwrap``), where it is installed and works, shows it only ``/usr``, the fontconfig
  settings and the private folder, with no network, so that a model cannot read anything else;
- ``RLIMIT_AS`` caps its memory, ``RLIMIT_CPU`` its processor time and ``RLIMIT_FSIZE`` the
  files it writes, set through ``prlimit`` (util-linux) where present, else in the child before
  ``exec`` (``preexec_fn``, which Python warns about in processes with threads);
- its messages go to a file, of which only the first and last 64 KB are read back;
- it runs in its own session, and the whole process group is killed at the timeout.

Failures become ``RenderFailed`` with the program's own ``ERROR:`` lines (which name the file
and line), or "stopped after N s", or "hit the memory limit".
"""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from manifold3d import Manifold, Mesh

from fabflow.errors import RenderFailed
from fabflow.production.scad.literals import define_arguments

log = logging.getLogger(__name__)
OPENSCAD = "openscad"
_STL_HEADER = 84  # 80 bytes of header and a triangle count
_STL_RECORD = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
MAX_FILE_BYTES = 512 << 20  # RLIMIT_FSIZE: no file the program writes may pass this
_LOG_PART = 64 << 10
_MEMORY_SIGNS = ("bad_alloc", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class Limits:
    """What one run of the program may use: wall seconds and address space."""

    timeout: float = 60.0
    memory_mb: int = 2048
    stated_timeout: float | None = None  # the caller's whole budget, for messages
    deadline: float | None = None  # time.monotonic() by which in-process work must end

    @property
    def said(self) -> str:
        return f"{self.stated_timeout or self.timeout:g} s"


@dataclass(frozen=True)
class Workspace:
    """A private run folder: ``model`` holds the product's files, ``out`` the results."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def out(self) -> Path:
        return self.root / "out"


@contextmanager
def private_copy(folder: Path) -> Iterator[Workspace]:
    """A temporary copy of ``folder``'s regular files and sub-folders, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="fabflow-scad-"))
    try:
        workspace = Workspace(root)
        _copy_regular(folder, workspace.model)
        workspace.out.mkdir()
        yield workspace
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _copy_regular(source: Path, target: Path) -> None:
    target.mkdir()
    for entry in os.scandir(source):
        if entry.is_symlink():
            continue  # a link could point anywhere; the store keeps plain files only
        if entry.is_dir():
            _copy_regular(Path(entry.path), target / entry.name)
        elif entry.is_file():
            shutil.copyfile(entry.path, target / entry.name)


@lru_cache(maxsize=1)
def sandbox_available() -> bool:
    """True when ``bwrap`` is installed and can make a namespace here (containers may refuse)."""
    if shutil.which("bwrap") is None:
        log.warning("bwrap not found: openscad runs without a sandbox (install bubblewrap)")
        return False
    probe = subprocess.run(
        ["bwrap", *_bind_system(), "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        reason = probe.stderr.decode("utf-8", "replace").strip()
        log.warning("bwrap cannot make a sandbox here (%s): openscad runs without one", reason)
    return probe.returncode == 0


def _bind_system() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for name in ("lib", "lib64", "bin", "sbin"):
        if Path(f"/{name}").is_symlink():
            args += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif Path(f"/{name}").is_dir():
            args += ["--ro-bind", f"/{name}", f"/{name}"]
    for shared in ("/etc/fonts", "/var/cache/fontconfig"):
        if Path(shared).is_dir():
            args += ["--ro-bind", shared, shared]
    return args


def _sandboxed(command: list[str], workspace: Workspace) -> list[str]:
    if not sandbox_available():
        return command
    root = str(workspace.root)
    return [
        "bwrap",
        *_bind_system(),
        *_bind_font_cache(),
        "--bind",
        root,
        root,
        "--chdir",
        str(workspace.model),
        "--unshare-all",
        "--die-with-parent",
        "--setenv",
        "HOME",
        "/tmp",
        "--",
        *command,
    ]


def _bind_font_cache() -> list[str]:
    """This user's fontconfig cache, read-only, where the sandbox's HOME looks for it.

    Where ``fc-cache -s`` has not cached every font folder system-wide, fontconfig in an
    empty HOME scans the fonts on each run: 30 ms more for every ``.csg`` export."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fontconfig"
    if not cache.is_dir():
        return []
    return ["--ro-bind", str(cache), "/tmp/.cache/fontconfig"]


def _rlimits(limits: Limits) -> tuple[int, int]:
    return limits.memory_mb * 1024 * 1024, max(1, int(limits.timeout) + 1)


def _limited(command: list[str], limits: Limits) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return command
    memory, cpu = _rlimits(limits)
    return [prlimit, f"--as={memory}", f"--cpu={cpu}", f"--fsize={MAX_FILE_BYTES}", "--", *command]


def _preexec(limits: Limits) -> Callable[[], None] | None:
    """Limits set in the child itself, only where ``prlimit`` is missing."""
    if shutil.which("prlimit") is not None:
        return None
    memory, cpu = _rlimits(limits)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))

    return apply


def run_openscad(
    workspace: Workspace,
    main: str,
    output: Path,
    values: Mapping[str, Any],
    limits: Limits,
    extra: tuple[str, ...] = (),
) -> str:
    """Run ``openscad -o output main`` in the workspace; returns its standard error text."""
    command = [OPENSCAD, "-o", str(output), *extra, *define_arguments(values), main]
    command = _limited(_sandboxed(command, workspace), limits)
    started = time.monotonic()
    log_path = output.with_name(output.name + ".log")
    # messages go to a file, not a pipe: a model echoing in a loop must not fill our memory
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workspace.model,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            env=_environment(),
            preexec_fn=_preexec(limits),  # only without prlimit; see the module docstring
        )
        try:
            process.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            raise RenderFailed(f"openscad stopped after {limits.said}") from None
        finally:
            _kill_group(process)  # bwrap's children, or anything the program left behind
    stderr = _read_log(log_path)
    _raise_on_failure(process.returncode, stderr, output, limits, time.monotonic() - started)
    return stderr


def _read_log(path: Path) -> str:
    """The program's messages, or their first and last parts when there are too many."""
    with path.open("rb") as handle:
        head = handle.read(_LOG_PART)
        size = path.stat().st_size
        if size <= 2 * _LOG_PART:
            return (head + handle.read()).decode("utf-8", "replace")
        handle.seek(size - _LOG_PART)
        tail = handle.read()
    text = head.decode("utf-8", "replace") + "\n[...]\n" + tail.decode("utf-8", "replace")
    return text


def _environment() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "FONTCONFIG_PATH", "FONTCONFIG_FILE")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["HOME"] = "/tmp"  # no user font folders or settings leak into the render
    return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _raise_on_failure(code: int, stderr: str, output: Path, limits: Limits, seconds: float) -> None:
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and seconds >= limits.timeout * 0.5:
        raise RenderFailed(f"openscad stopped after {limits.said} (processor time)")
    # a failed allocation under RLIMIT_AS shows as std::bad_alloc, or as abort or a crash
    crashed = code in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS)
    if crashed or any(sign in stderr for sign in _MEMORY_SIGNS):
        raise RenderFailed(f"openscad hit the memory limit ({limits.memory_mb} MB)")
    if code == -signal.SIGXFSZ:
        raise RenderFailed(f"openscad's output passed the size limit ({MAX_FILE_BYTES >> 20} MB)")
    if code < 0:
        raise RenderFailed(f"openscad was stopped by signal {signal.Signals(-code).name}")
    errors = _error_lines(stderr)
    if code != 0 or errors:
        raise RenderFailed("openscad: " + ("; ".join(errors) or f"exit status {code}"))
    if not output.is_file():
        raise RenderFailed("openscad wrote nothing: " + (_last_line(stderr) or "no message"))


def _error_lines(stderr: str) -> list[str]:
    lines = [line.strip() for line in stderr.splitlines()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    for line in lines:
        if "top level object is empty" in line or "not a 3D object" in line:
            errors.append(line)
            errors += warning_lines(stderr)  # often the reason: an unknown module, say
    return [_relative(line) for line in errors]


def warning_lines(stderr: str, limit: int = 3) -> list[str]:
    """The program's first ``WARNING:`` lines, private folder names removed."""
    lines = [line.strip() for line in stderr.splitlines()]
    return [_relative(line) for line in lines if line.startswith("WARNING:")][:limit]


def _relative(line: str) -> str:
    # The private folder's path means nothing to the user; the file name inside it does.
    return re.sub(r"\"?/[^\s\"]*/fabflow-scad-[^/\s\"]+/model/([^\s\",]*)\"?", r"\1", line)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def read_binary_stl(path: Path) -> Manifold:
    """A binary STL written by ``openscad`` as a closed Manifold (shared corners merged)."""
    data = path.read_bytes()
    count = int.from_bytes(data[80:84], "little") if len(data) >= _STL_HEADER else 0
    if count == 0:
        raise RenderFailed("openscad made an empty model")
    records = np.frombuffer(data, dtype=_STL_RECORD, count=count, offset=_STL_HEADER)
    corners = records["vertices"].reshape(-1, 3)
    # openscad writes a corner shared by several triangles as the same three floats each time
    vertices, index = np.unique(corners, axis=0, return_inverse=True)
    triangles = index.reshape(-1, 3).astype(np.uint32)
    solid = Manifold(Mesh(vert_properties=vertices.astype(np.float32), tri_verts=triangles))
    if solid.status().name != "NoError" or solid.is_empty():
        raise RenderFailed(f"openscad's result is not a closed solid ({solid.status().name})")
    return solid
