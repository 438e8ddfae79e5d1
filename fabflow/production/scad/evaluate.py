"""A ``.csg`` tree built on manifold3d: the fast path.

Every node becomes a ``Manifold`` (3D), a ``CrossSection`` (2D) or nothing (empty), following
OpenSCAD 2021's ``GeometryEvaluator``: children of a group, transform, colour or extrusion are
united; ``%`` (background) nodes are left out; a 2D shape among 3D ones is an error there, and
here a reason to let the program render instead. A node this module does not build raises
``Unsupported`` with its name, and the caller renders the whole model with ``openscad``.

Before anything is built, ``estimate_facets`` walks the tree and refuses a model that asks for
more than ``MAX_FACETS`` facets (``$fn = 1e9``): building it would only exhaust memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from manifold3d import CrossSection, Manifold, OpType

from fabflow.errors import RenderFailed
from fabflow.production.scad import glyphs, primitives
from fabflow.production.scad.csg import Node, Value
from fabflow.production.scad.extrude import twisted_extrude
from fabflow.production.scad.imports import import_mesh
from fabflow.production.scad.offset import clipper_offset
from fabflow.production.scad.primitives import Unsupported, fragments

Shape: TypeAlias = Manifold | CrossSection | None
MAX_FACETS = 5_000_000
_COLLINEAR = 1e-6  # mm; Clipper 1 works on a grid of 2^-16 mm
# What the fast path builds (for documentation; anything else goes to openscad). import takes
# STL, OFF and 3MF files; text takes left-to-right and right-to-left scripts.
FAST_PATH_NODES = (
    "cube", "sphere", "cylinder", "polyhedron", "square", "circle", "polygon", "text", "import",
    "multmatrix", "union", "difference", "intersection", "group", "hull", "minkowski",
    "offset", "linear_extrude", "rotate_extrude", "projection", "resize", "color", "render",
)  # fmt: skip
_PASS_THROUGH = ("group", "union", "color", "render", "root")


def evaluate(
    nodes: Sequence[Node],
    folder: Path,
    base: Path | None = None,
    deadline: float | None = None,
) -> Manifold:
    """The model described by the top-level nodes, ``folder`` holding its files and ``base``
    (default ``folder``) the main file, which file names are relative to. Past ``deadline``
    (``time.monotonic``) it raises TimeoutError between two nodes; one manifold3d operation
    is not interrupted, the facet limit keeps each of them bounded."""
    facets = estimate_facets(nodes)
    if facets > MAX_FACETS:
        raise RenderFailed(
            f"the model asks for about {facets:,.0f} facets; the limit is {MAX_FACETS:,}"
        )
    shape = _Builder(folder, base or folder, deadline).union(nodes)
    if isinstance(shape, CrossSection):
        raise RenderFailed("the model is flat (2D): a product must be a 3D object")
    if shape is None or shape.is_empty():
        raise RenderFailed("the model is empty")
    return shape


class _Builder:
    def __init__(self, folder: Path, base: Path, deadline: float | None) -> None:
        self.folder = folder
        self.base = base
        self.deadline = deadline
        self.handlers: dict[str, Callable[[Node], Shape]] = {
            "cube": self.cube,
            "sphere": self.sphere,
            "cylinder": self.cylinder,
            "polyhedron": self.polyhedron,
            "square": self.square,
            "circle": self.circle,
            "polygon": self.polygon,
            "text": lambda node: glyphs.text(node.args),
            "import": self.import_,
            "multmatrix": self.multmatrix,
            "difference": self.difference,
            "intersection": self.intersection,
            "hull": self.hull,
            "minkowski": self.minkowski,
            "offset": self.offset,
            "linear_extrude": self.linear_extrude,
            "rotate_extrude": self.rotate_extrude,
            "projection": self.projection,
            "resize": self.resize,
        }

    def build(self, node: Node) -> Shape:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError("building the model overran the deadline")
        if node.name in _PASS_THROUGH:
            return self.union(node.children)
        handler = self.handlers.get(node.name)
        if handler is None:
            raise Unsupported(node.name)
        return handler(node)

    def shapes(self, nodes: Sequence[Node]) -> list[Manifold | CrossSection]:
        built = [self.build(node) for node in nodes if "%" not in node.modifier]
        shapes = [shape for shape in built if shape is not None and not shape.is_empty()]
        if len({type(shape) for shape in shapes}) > 1:
            raise Unsupported("2D and 3D objects mixed")
        return shapes

    def union(self, nodes: Sequence[Node]) -> Shape:
        return _combine(self.shapes(nodes), OpType.Add)

    # -- primitives -------------------------------------------------------------------------

    def cube(self, node: Node) -> Shape:
        return primitives.cube(_vector(node.args.get("size"), 3), _flag(node, "center"))

    def sphere(self, node: Node) -> Shape:
        return primitives.sphere(_number(node, "r", 1.0), *_resolution(node))

    def cylinder(self, node: Node) -> Shape:
        h, r1, r2 = (_number(node, key, 1.0) for key in ("h", "r1", "r2"))
        return primitives.cylinder(h, r1, r2, _flag(node, "center"), *_resolution(node))

    def polyhedron(self, node: Node) -> Shape:
        points = _array(node.args.get("points"), 3)
        faces = node.args.get("faces") or node.args.get("triangles")
        return primitives.polyhedron(points, _index_lists(faces) or [])

    def square(self, node: Node) -> Shape:
        return primitives.square(_vector(node.args.get("size"), 2), _flag(node, "center"))

    def circle(self, node: Node) -> Shape:
        return primitives.circle(_number(node, "r", 1.0), *_resolution(node))

    def polygon(self, node: Node) -> Shape:
        paths = node.args.get("paths")
        return primitives.polygon(_array(node.args.get("points"), 2), _index_lists(paths))

    def import_(self, node: Node) -> Shape:
        return import_mesh(self.folder, str(node.args.get("file", "")), self.base)

    # -- transforms and booleans ------------------------------------------------------------

    def multmatrix(self, node: Node) -> Shape:
        shape = self.union(node.children)
        matrix = np.asarray(node.args.get("#0", node.args.get("m")), dtype=np.float64)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise Unsupported("multmatrix (matrix not 4x4)")
        if isinstance(shape, Manifold):
            return shape.transform(matrix[:3, :4])
        if isinstance(shape, CrossSection):  # OpenSCAD keeps the 2D part of the matrix
            return shape.transform(matrix[np.ix_([0, 1], [0, 1, 3])])
        return None

    def difference(self, node: Node) -> Shape:
        kept = [n for n in node.children if "%" not in n.modifier]
        if not kept:
            return None
        first, *rest = kept
        base = self.build(first)
        others = self.shapes(rest)
        if base is None or not others:
            return base
        if any(type(other) is not type(base) for other in others):
            raise Unsupported("2D and 3D objects mixed")
        return base - _combine(others, OpType.Add)

    def intersection(self, node: Node) -> Shape:
        built = [self.build(n) for n in node.children if "%" not in n.modifier]
        if any(shape is None or shape.is_empty() for shape in built):
            return None
        shapes = [shape for shape in built if shape is not None]
        if len({type(shape) for shape in shapes}) > 1:
            raise Unsupported("2D and 3D objects mixed")
        return _combine(shapes, OpType.Intersect)

    def hull(self, node: Node) -> Shape:
        shapes = self.shapes(node.children)
        if not shapes:
            return None
        if isinstance(shapes[0], Manifold):
            return Manifold.batch_hull(shapes)
        return CrossSection.batch_hull(shapes)

    def minkowski(self, node: Node) -> Shape:
        shapes = self.shapes(node.children)
        if not shapes:
            return None
        result = shapes[0]
        for other in shapes[1:]:
            result = _minkowski(result, other)
        return result

    def resize(self, node: Node) -> Shape:
        shape = self.union(node.children)
        if shape is None:
            return None
        flat = isinstance(shape, CrossSection)
        dims = 2 if flat else 3
        new = _vector(node.args.get("newsize"), 3)[:dims]
        auto = node.args.get("auto")
        autos = [bool(a) for a in auto[:dims]] if isinstance(auto, tuple) else [False] * dims
        box = np.asarray(shape.bounds() if flat else shape.bounding_box())
        factors = resize_factors(new, autos, list(box[dims:] - box[:dims]))
        return shape.scale(factors)

    # -- 2D operations and extrusions -------------------------------------------------------

    def offset(self, node: Node) -> Shape:
        shape = self._flat(node, "offset")
        if shape is None:
            return None
        if "r" in node.args:
            delta, join = _number(node, "r", 1.0), "round"
        else:
            delta = _number(node, "delta", 1.0)
            join = "square" if _flag(node, "chamfer") else "miter"
        count = fragments(abs(delta), *_resolution(node))
        arc_tolerance = abs(delta) * (1 - math.cos(math.radians(180 / count)))
        return clipper_offset(shape, delta, join, arc_tolerance)  # type: ignore[arg-type]

    def linear_extrude(self, node: Node) -> Shape:
        shape = self._flat(node, "linear_extrude")
        height = _number(node, "height", 100.0)
        if shape is None or height <= 0:
            return None
        twist = _number(node, "twist", 0.0)
        scale = _vector(node.args.get("scale", (1.0, 1.0)), 2)
        slices = extrude_slices(node, shape, height, twist, scale)
        # twisted or unevenly scaled sides are not flat: the diagonals must be OpenSCAD's
        if twist != 0 or slices > 1 or scale[0] != scale[1]:
            if _contains(node, "projection"):
                # its outline carries points where CGAL's triangles met the plane; twisted,
                # each one shapes the sides, and ours cannot be the same points
                raise Unsupported("linear_extrude with twist or uneven scale of a projection")
            # OpenSCAD's outline has passed through Clipper, which drops points lying on a
            # straight edge; on a twisted side such a point would change the triangulation
            flat = shape.simplify(_COLLINEAR)
            solid = twisted_extrude(flat, height, twist, slices, scale)
        else:
            solid = Manifold.extrude(shape, height, 0, 0.0, (scale[0], scale[1]))
        if _flag(node, "center"):
            solid = solid.translate((0.0, 0.0, -height / 2))
        return solid

    def rotate_extrude(self, node: Node) -> Shape:
        shape = self._flat(node, "rotate_extrude")
        angle = _number(node, "angle", 360.0)
        if shape is None or angle == 0:
            return None
        (min_x, _), (max_x, _) = np.split(np.asarray(shape.bounds()), 2)
        if min_x < 0:
            raise Unsupported("rotate_extrude (profile left of the axis)")
        count = fragments(max_x, *_resolution(node))
        if angle == 360:
            solid = Manifold.revolve(shape, count)
            # OpenSCAD starts a full turn on -X ("for legacy support"); manifold3d on +X
            return solid.rotate((0.0, 0.0, 180.0)) if count % 2 else solid
        if abs(angle) > 360:
            raise Unsupported("rotate_extrude (angle beyond a full turn)")
        steps = int(max(count * abs(angle) / 360, 1))
        if steps < 3:  # manifold3d would take its own default for fewer than 3
            raise Unsupported("rotate_extrude (a partial turn in fewer than 3 steps)")
        solid = Manifold.revolve(shape, steps, abs(angle))
        return solid.mirror((0.0, 1.0, 0.0)) if angle < 0 else solid

    def projection(self, node: Node) -> Shape:
        shape = self.union(node.children)
        if not isinstance(shape, Manifold):
            return None
        return shape.slice(0.0) if _flag(node, "cut") else shape.project()

    def _flat(self, node: Node, what: str) -> CrossSection | None:
        shape = self.union(node.children)
        if isinstance(shape, Manifold):
            raise Unsupported(f"{what} of a 3D object")
        return shape


def resize_factors(new: list[float], auto: list[bool], size: list[float]) -> list[float]:
    """OpenSCAD's ``resize``: the axes given are scaled to size; an ``auto`` axis left at 0
    follows the axis with the largest new size; the rest stay (PolySet::resize)."""
    scale = [n / s if n > 0 and s > 0 else 1.0 for n, s in zip(new, size, strict=True)]
    largest = max(range(len(new)), key=lambda i: (new[i], -i))
    follow = scale[largest] if new[largest] > 0 else 1.0
    return [scale[i] if not auto[i] or new[i] > 0 else follow for i in range(len(new))]


def _contains(node: Node, name: str) -> bool:
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.name == name:
            return True
        stack.extend(child.children)
    return False


def _combine(shapes: Sequence[Manifold | CrossSection], op: OpType) -> Shape:
    if not shapes:
        return None
    if len(shapes) == 1:
        return shapes[0]
    if isinstance(shapes[0], Manifold):
        return Manifold.batch_boolean(list(shapes), op)
    return CrossSection.batch_boolean(list(shapes), op)


def _minkowski(a: Manifold | CrossSection, b: Manifold | CrossSection) -> Manifold | CrossSection:
    if isinstance(a, Manifold) and isinstance(b, Manifold):
        return a.minkowski_sum(b)
    if isinstance(a, CrossSection) and isinstance(b, CrossSection):
        if not (_is_convex(a) and _is_convex(b)):
            raise Unsupported("minkowski (2D, not convex)")
        pa, pb = _corners(a), _corners(b)
        return CrossSection.hull_points((pa[:, None, :] + pb[None, :, :]).reshape(-1, 2))
    raise Unsupported("2D and 3D objects mixed")


def _is_convex(shape: CrossSection) -> bool:
    return bool(math.isclose(shape.hull().area(), shape.area(), rel_tol=1e-9))


def _corners(shape: CrossSection) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.concatenate([np.asarray(c) for c in shape.to_polygons()])


def extrude_slices(
    node: Node, shape: CrossSection, height: float, twist: float, scale: Sequence[float]
) -> int:
    """OpenSCAD's slice count: given, or from the helix (twist) or the diagonal (scale)."""
    if "slices" in node.args:
        return max(int(_number(node, "slices", 1.0)), 1)
    fn, fs, fa = _resolution(node)
    points = _corners(shape)
    if twist != 0:
        r = float(np.sqrt((points**2).sum(axis=1).max()))
        if scale[0] == scale[1] and scale[0] != 1.0:
            return _conical_helix_slices(r, height, twist, scale[0], fn, fs, fa)
        return _helix_slices(r, height, twist, fn, fs, fa)
    if scale[0] != scale[1]:
        delta = float(np.sqrt(((points - points * np.asarray(scale)) ** 2).sum(axis=1).max()))
        if delta < primitives.GRID_FINE or not math.isfinite(fn):
            return 1
        if fn > 0:
            return max(int(fn), 1)
        return max(math.ceil(math.sqrt(delta**2 + height**2) / fs), 1)
    return 1


def _helix_slices(r: float, height: float, twist: float, fn: float, fs: float, fa: float) -> int:
    twist = abs(twist)
    least = max(math.ceil(twist / 120.0), 1)
    if r < primitives.GRID_FINE or not math.isfinite(fn):
        return least
    if fn > 0:
        return max(math.ceil(twist / 360.0 * fn), least)
    turn = math.radians(twist)
    arc = turn * math.sqrt(r * r + (height / turn) ** 2)
    return max(min(math.ceil(twist / fa), math.ceil(arc / fs)), least)


def _conical_helix_slices(
    r: float, height: float, twist: float, scale: float, fn: float, fs: float, fa: float
) -> int:
    twist = abs(twist)
    least = max(math.ceil(twist / 120.0), 1)
    if r < primitives.GRID_FINE or not math.isfinite(fn):
        return least
    if fn > 0:
        return max(math.ceil(twist * fn / 360), least)
    turn = math.radians(twist)
    end = turn * scale / (scale - 1) if scale > 1 else turn / (1 - scale)
    a = r / end

    def spiral(theta: float) -> float:
        return 0.5 * a * (theta * math.sqrt(1 + theta * theta) + math.asinh(theta))

    length = math.hypot(spiral(end) - spiral(end - turn), height)
    return max(min(math.ceil(twist / fa), math.ceil(length / fs)), least)


# -- facet estimate ---------------------------------------------------------------------------


def estimate_facets(nodes: Sequence[Node]) -> float:
    """Roughly how many facets (or 2D corners) the tree makes, before building any of it."""
    return sum(_facets(node) for node in nodes)


def _facets(node: Node) -> float:
    inner = estimate_facets(node.children)
    name, args = node.name, node.args
    if name in ("sphere", "circle", "cylinder"):
        r = max(_number(node, key, 0.0) for key in ("r", "r1", "r2"))
        count = float(fragments(r, *_resolution(node)))
        return count * count if name == "sphere" else 4 * count
    if name == "text":
        return (
            60.0
            * len(str(args.get("text", "")))
            * fragments(_number(node, "size", 10.0), *_resolution(node))
        )
    if name in ("polyhedron", "polygon"):
        return float(len(args.get("faces") or args.get("points") or ()))  # type: ignore[arg-type]
    if name == "linear_extrude":
        return inner * 2 * _slices_bound(node)
    if name == "offset" and "r" in args:
        return inner * (1 + fragments(abs(_number(node, "r", 1.0)), *_resolution(node)) / 4)
    if name == "rotate_extrude":
        return inner * 2 * fragments(1e9, *_resolution(node))  # the widest profile: $fa rules
    if name == "minkowski":
        return float(np.prod([max(_facets(child), 1.0) for child in node.children]))
    return inner + 12.0


def _slices_bound(node: Node) -> float:
    """At least as many slices as ``extrude_slices`` makes, from the arguments alone."""
    if "slices" in node.args:
        return max(_number(node, "slices", 1.0), 1.0)
    fn, fs, fa = _resolution(node)
    twist = abs(_number(node, "twist", 0.0))
    if twist:
        return float(math.ceil(twist * fn / 360) if fn > 0 else math.ceil(twist / fa)) + 1
    scale = node.args.get("scale")
    if isinstance(scale, tuple) and len(scale) == 2 and scale[0] != scale[1]:
        return fn if fn > 0 else _number(node, "height", 100.0) / fs * 4 + 1
    return 1.0


# -- argument helpers -------------------------------------------------------------------------


def _number(node: Node, key: str, default: float) -> float:
    value = node.args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, float):
        return default
    return value


def _flag(node: Node, key: str) -> bool:
    return node.args.get(key) is True


def _resolution(node: Node) -> tuple[float, float, float]:
    """``($fn, $fs, $fa)`` in the order ``fragments`` takes them after r."""
    return (_number(node, "$fn", 0.0), _number(node, "$fs", 2.0), _number(node, "$fa", 12.0))


def _vector(value: Value, size: int) -> list[float]:
    if isinstance(value, float):
        return [value] * size
    if isinstance(value, tuple) and len(value) == size and all(isinstance(v, float) for v in value):
        return [float(v) for v in value]  # type: ignore[arg-type]
    raise Unsupported(f"a vector of {size} numbers expected, got {value!r}")


def _array(value: Value, width: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    if value is None or value == ():
        return np.zeros((0, width))
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Unsupported("points that are not numbers") from exc
    if array.ndim != 2 or array.shape[1] != width:
        raise Unsupported(f"points that are not {width}D")
    return array


def _index_lists(value: Value) -> list[list[int]] | None:
    if not isinstance(value, tuple):
        return None
    return [[int(i) for i in item] for item in value if isinstance(item, tuple)]  # type: ignore[arg-type]
