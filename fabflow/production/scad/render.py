"""Render a product's OpenSCAD model: the fast path where it can, the program where it must.

``auto`` asks ``openscad`` for the flattened ``.csg`` tree (tens of milliseconds) and builds it
on manifold3d; a node the fast path does not build sends the whole model to the ``openscad``
program (STL export), and ``Rendered.fallback_reason`` says which node. ``manifold`` refuses
instead of falling back; ``openscad`` always uses the program. Both run in a private copy of the
product's folder, under the same limits, and the timeout covers the whole call.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from manifold3d import Manifold

from fabflow.errors import RenderFailed
from fabflow.production.scad.csg import CsgSyntaxError, Node, parse
from fabflow.production.scad.evaluate import evaluate
from fabflow.production.scad.imports import resolve_inside
from fabflow.production.scad.openscad import (
    Limits,
    Workspace,
    private_copy,
    read_binary_stl,
    run_openscad,
    sandbox_available,
    warning_lines,
)
from fabflow.production.scad.primitives import Unsupported

log = logging.getLogger(__name__)
Renderer = Literal["manifold", "openscad"]
Mode = Literal["auto", "manifold", "openscad"]
RENDER_MODES: tuple[Mode, ...] = ("auto", "manifold", "openscad")
_FILE_NODES = ("import", "surface", "linear_extrude", "rotate_extrude")
_RECURSION_LIMIT = 20_000  # about 5,000 levels of .csg nesting
_DEPTH_LOCK = threading.Lock()
_deep_users = 0
_saved_limit = 1000
# about 400,000 objects; reading one takes seconds, and the facet limit would refuse it anyway
MAX_CSG_BYTES = 50_000_000
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".pfb", ".woff", ".woff2")


@dataclass(frozen=True)
class Rendered:
    """A rendered model: the solid in mm, which renderer made it, and how long it took."""

    solid: Manifold
    renderer: Renderer
    seconds: float
    fallback_reason: str | None  # why auto went to openscad (the unsupported node), else None


def render_model(
    folder: Path,
    main: str,
    values: Mapping[str, Any],
    *,
    mode: Mode = "auto",
    timeout: float = 60.0,
    memory_mb: int = 2048,
) -> Rendered:
    """Render ``folder/main`` with the parameter ``values``; raises RenderFailed."""
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown render mode {mode!r}")
    if not (folder / main).resolve().is_relative_to(folder.resolve()):
        raise RenderFailed(f"the main file {main!r} is outside the product's folder")
    started = time.monotonic()
    limits = Limits(timeout, memory_mb, deadline=started + timeout)
    with private_copy(folder) as workspace:
        try:
            return _render(workspace, main, values, mode, limits, started)
        except TimeoutError as exc:
            raise RenderFailed(f"stopped after {timeout:g} s ({exc})") from exc


def _render(
    workspace: Workspace,
    main: str,
    values: Mapping[str, Any],
    mode: Mode,
    limits: Limits,
    started: float,
) -> Rendered:
    reason: str | None = None
    if mode != "openscad":
        try:
            solid = _fast(workspace, main, values, limits)
            return Rendered(solid, "manifold", time.monotonic() - started, None)
        except Unsupported as exc:
            if mode == "manifold":
                raise RenderFailed(f"the fast renderer does not build {exc.what}") from exc
            reason = exc.what
    else:
        _precheck(workspace, main, values, limits)
    left = limits.timeout - (time.monotonic() - started)
    if left <= 0:
        raise TimeoutError("nothing left for openscad")
    solid = _reference(workspace, main, values, Limits(left, limits.memory_mb, limits.timeout))
    return Rendered(solid, "openscad", time.monotonic() - started, reason)


def _fast(workspace: Workspace, main: str, values: Mapping[str, Any], limits: Limits) -> Manifold:
    nodes = _export_tree(workspace, main, values, limits)
    base = (workspace.model / main).parent
    _check_files(nodes, workspace.model, base)
    if _quoted_text(values):
        # openscad 2021 writes texts unescaped: a quote could end one early (csg.py)
        raise Unsupported("a text parameter holding a double quote")
    if any(node.name == "text" for node in _walk(nodes)) and _ships_fonts(workspace.model):
        # `use <font.ttf>` registers a font with openscad that fc-match here does not see
        raise Unsupported("text with fonts shipped in the product")
    try:
        with _deep_stack():
            return evaluate(nodes, workspace.model, base, limits.deadline)
    except RecursionError as exc:
        raise Unsupported("a tree nested deeper than the fast path follows") from exc
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        # a node with arguments this builder did not expect: the program knows better
        log.warning("fast path failed on %s; rendering with openscad", main, exc_info=True)
        raise Unsupported(f"an argument the fast path cannot use ({type(exc).__name__})") from exc


def _export_tree(
    workspace: Workspace, main: str, values: Mapping[str, Any], limits: Limits
) -> tuple[Node, ...]:
    output = workspace.out / "model.csg"
    warnings = warning_lines(run_openscad(workspace, main, output, values, limits))
    size = output.stat().st_size
    if size > MAX_CSG_BYTES:
        raise RenderFailed(
            f"the model has too many objects (its tree is {size / 1e6:.0f} MB;"
            f" the limit is {MAX_CSG_BYTES / 1e6:.0f} MB)"
        )
    text = output.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise RenderFailed("; ".join(["the model is empty", *warnings]))
    try:
        with _deep_stack():
            return parse(text, deadline=limits.deadline)
    except CsgSyntaxError as exc:
        raise Unsupported(f"a .csg file this reader does not follow ({exc})") from exc
    except RecursionError as exc:
        raise Unsupported("a tree nested deeper than the fast path follows") from exc


def _precheck(workspace: Workspace, main: str, values: Mapping[str, Any], limits: Limits) -> None:
    """Refuse files read from outside before the program renders. The sandbox hides them
    anyway; this names the culprit. Without a sandbox it is the only guard, and a tree this
    reader cannot follow is refused."""
    try:
        tree = _export_tree(workspace, main, values, limits)
    except Unsupported as exc:
        if sandbox_available():
            return
        raise RenderFailed(f"cannot check the files this model reads: {exc.what}") from exc
    _check_files(tree, workspace.model, (workspace.model / main).parent)


def _reference(
    workspace: Workspace, main: str, values: Mapping[str, Any], limits: Limits
) -> Manifold:
    output = workspace.out / "model.stl"
    run_openscad(workspace, main, output, values, limits, ("--export-format", "binstl"))
    return read_binary_stl(output)


@contextmanager
def _deep_stack() -> Iterator[None]:
    """Room for the tree's depth: a recursive module nests two nodes per call, and openscad
    follows a few thousand calls. Python 3.11 does not grow the C stack for Python calls,
    so a higher recursion limit is safe; it is restored when the last render leaves."""
    global _deep_users, _saved_limit
    with _DEPTH_LOCK:
        if _deep_users == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, _RECURSION_LIMIT))
        _deep_users += 1
    try:
        yield
    finally:
        with _DEPTH_LOCK:
            _deep_users -= 1
            if _deep_users == 0:
                sys.setrecursionlimit(_saved_limit)


def _check_files(nodes: Sequence[Node], root: Path, base: Path) -> None:
    """Refuse a tree that reads a file outside the model's folder, before anything reads it."""
    for node in _walk(nodes):
        name = node.args.get("file")
        if node.name in _FILE_NODES and isinstance(name, str) and name:
            resolve_inside(root, name, base)


def _walk(nodes: Sequence[Node]) -> Iterator[Node]:
    """Every node of the tree, without recursion (trees may be thousands of levels deep)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _ships_fonts(folder: Path) -> bool:
    return any(p.suffix.lower() in _FONT_SUFFIXES for p in folder.rglob("*") if p.is_file())


def _quoted_text(values: Mapping[str, Any]) -> bool:
    def holds_quote(value: Any) -> bool:
        if isinstance(value, str):
            return '"' in value
        if isinstance(value, (list, tuple)):
            return any(holds_quote(item) for item in value)
        return False

    return any(holds_quote(value) for value in values.values())
