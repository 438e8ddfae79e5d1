"""A model made into a product: its parameters, the files it reads, its parts, and a check
that it renders with its defaults.

A model makes one part (``model``) unless it has a ``part`` dropdown, the common Customizer
convention for printing pieces apart (``part = "all"; // [all, base, lid]``): then each value
but ``all`` / ``both`` / ``assembly`` is a part, rendered with ``part`` set to it, and ``part``
is not the customer's to set.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fabflow.errors import InvalidProduct, MeshCheckFailed, Problem, RenderFailed
from fabflow.production.scad.bundle import ProductBundle
from fabflow.production.scad.customizer import Customizer, parse_customizer
from fabflow.production.scad.references import reference_problems

PART_PARAMETER = "part"
WHOLE = frozenset({"all", "both", "assembly", "everything"})
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
NAME_RULE = "1-100 lowercase letters, digits, '-' or '_', starting with a letter or digit"


@dataclass(frozen=True)
class ModelProduct:
    """What a product's main file says: the customer's parameters and the parts it makes."""

    customizer: Customizer
    parts: tuple[str, ...]
    description: str

    def schema(self, title: str) -> dict[str, Any]:
        return self.customizer.json_schema(title=title, description=self.description)

    def problems(self, parameters: Mapping[str, Any]) -> list[Problem]:
        return self.customizer.problems(parameters)

    def part_values(self, parameters: Mapping[str, Any], part: str) -> dict[str, Any]:
        """The ``-D`` values for one part: the customer's, and ``part`` when parts are split."""
        values = dict(parameters)
        if self.parts != ("model",):
            values[PART_PARAMETER] = part
        return values


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidProduct(f"product name {name!r}: {NAME_RULE}", [Problem("/name", NAME_RULE)])
    return name


@lru_cache(maxsize=256)
def model_of(main: str, source: str) -> ModelProduct:
    """The product a main file's text makes (cached: intake reads it for every order line)."""
    customizer = parse_customizer(source, main)
    part = next((p for p in customizer.parameters if p.name == PART_PARAMETER), None)
    if part is None or not part.options:
        return ModelProduct(customizer, ("model",), _description(source))
    parts = tuple(str(value) for value, _ in part.options if str(value).lower() not in WHOLE)
    rest = tuple(p for p in customizer.parameters if p.name != PART_PARAMETER)
    return ModelProduct(Customizer(parameters=rest), parts or ("model",), _description(source))


def read_model(bundle: ProductBundle) -> ModelProduct:
    """The product of a bundle, or InvalidProduct with every problem of its files."""
    sources = bundle.sources()
    problems = reference_problems(bundle.main, sources, set(bundle.files))
    if problems:
        first = problems[0]
        raise InvalidProduct(f"{first.pointer}: {first.message}", problems)
    return model_of(bundle.main, sources[bundle.main])


def _description(source: str) -> str:
    """The comment lines at the top of the file, before any code or Customizer tab."""
    lines = []
    for raw in source.splitlines():
        line = raw.strip()
        if not line.startswith("//"):
            break
        lines.append(line.lstrip("/").strip())
    return " ".join(part for part in lines if part).strip()[:2000]


def check_renders(
    bundle: ProductBundle, model: ModelProduct, *, mode: str, timeout: float, memory_mb: int
) -> dict[str, str]:
    """Render every part with the model's defaults and check it is a printable solid; the
    renderer that made each part. Raises InvalidProduct with openscad's reason."""
    from fabflow.production.build import checked_mesh
    from fabflow.production.scad.render import render_model

    made: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fabflow-model-") as folder:
        bundle.extract(Path(folder))
        for part in model.parts:
            values = model.part_values({}, part)
            try:
                rendered = render_model(
                    Path(folder),
                    bundle.main,
                    values,
                    mode=mode,  # type: ignore[arg-type]  # checked by Settings
                    timeout=timeout,
                    memory_mb=memory_mb,
                )
                checked_mesh(part, rendered.solid)
            except (RenderFailed, MeshCheckFailed) as exc:
                what = f"part {part!r}" if part != "model" else "the model"
                message = f"{what} does not render with its defaults: {exc.message}"
                raise InvalidProduct(message, [Problem(bundle.main, message)]) from None
            made[part] = rendered.renderer
    return made
