"""Imports point one way: no module of fabflow imports from a layer above its own.

Every ``import`` in the package is read (those inside functions too), and each must go to a
module of a lower layer, or of its own package. The layers, from the bottom: the base modules
every layer may use; the pure lifecycle and flow language; production; the store and the order
input; the steps; the engine; the API; the web UI; the server that composes them; the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fabflow

PACKAGE = Path(fabflow.__file__).parent

LAYERS: list[set[str]] = [
    {"fabflow", "errors", "settings", "logs", "ids", "files", "resources", "tokens"},
    {"lifecycle"},
    {"flows"},
    {"production"},
    {"store", "order_input"},
    {"steps"},
    {"engine"},
    {"api"},
    {"web"},
    {"server"},
    {"cli"},
]
# Lower, so allowed by the layers, but still not this module's business.
FORBIDDEN = {
    ("production", "lifecycle"),  # products know nothing of orders' lifecycle
    ("production", "flows"),
    ("steps", "store"),  # a step gets what it needs in its context
    ("steps", "lifecycle"),
    ("flows", "production"),
}


def _part(module: str) -> str:
    """The top-level part of ``fabflow.<part>...`` (``fabflow`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fabflow"


def _rank(part: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if part in layer:
            return rank
    raise AssertionError(f"fabflow.{part} is in no layer: add it to LAYERS")


def _imports(path: Path) -> list[tuple[int, str]]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = module.rsplit(".", node.level)[0]
            found.append((node.lineno, f"{base}.{node.module}" if node.module else base))
    return [(line, name) for line, name in found if name.split(".")[0] == "fabflow"]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_layer(path: Path) -> None:
    own = _part(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    if path.name == "__init__.py" and path.parent == PACKAGE:
        own = "fabflow"
    wrong = []
    for line, name in _imports(path):
        target = _part(name)
        if target == own or (target == "fabflow" and name == "fabflow"):
            continue
        same = _rank(target) == _rank(own) and _rank(own) > 0  # base modules share a layer
        up = _rank(target) > _rank(own) or (same and target != own)
        if up or (own, target) in FORBIDDEN:
            wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_layers_name_every_package() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith(("_", ".")) and p not in ("py", "py.typed")}
    named = set().union(*LAYERS)
    assert parts - {"fabflow"} <= named, f"not in a layer: {sorted(parts - named)}"
