"""Mesh checks: a part is accepted only as a closed, oriented, single, positive solid."""

from __future__ import annotations

import numpy as np
import pytest
from manifold3d import Manifold

from fabflow.production.mesh import (
    MeshCheckFailed,
    TriMesh,
    check,
    check_or_raise,
    from_manifold,
    without_slivers,
)


def cube() -> TriMesh:
    return from_manifold(Manifold.cube((10, 10, 10)))


def test_a_cube_passes_with_its_volume_and_box() -> None:
    stats = check(cube())
    assert stats.ok, stats.problems
    assert stats.triangles == 12
    assert stats.volume_mm3 == pytest.approx(1000)
    assert stats.bbox_min == (0, 0, 0) and stats.bbox_max == (10, 10, 10)


def test_a_triangle_soup_is_welded_before_checking() -> None:
    # STL keeps only positions: the check must judge what a slicer sees, not the indices.
    mesh = cube()
    soup = mesh.triangles.reshape(-1, 3)
    stats = check(TriMesh(soup, np.arange(len(soup)).reshape(-1, 3)))
    assert stats.ok, stats.problems


def test_an_open_mesh_is_refused() -> None:
    mesh = cube()
    stats = check(TriMesh(mesh.vertices, mesh.faces[1:]))
    assert any("not closed" in p for p in stats.problems)


def test_a_flipped_triangle_is_refused() -> None:
    mesh = cube()
    faces = mesh.faces.copy()
    faces[3] = faces[3][::-1]
    stats = check(TriMesh(mesh.vertices, faces))
    assert any("not consistently oriented" in p for p in stats.problems)


def test_two_bodies_are_refused() -> None:
    two = Manifold.cube((1, 1, 1)) + Manifold.cube((1, 1, 1)).translate((5, 0, 0))
    stats = check(from_manifold(two))
    assert stats.problems == ["it has 2 separate bodies, not one"]


def test_an_inside_out_solid_is_refused() -> None:
    mesh = cube()
    stats = check(TriMesh(mesh.vertices, mesh.faces[:, ::-1]))
    assert any("volume is not positive" in p for p in stats.problems)


def cube_with_a_face_twice() -> TriMesh:
    mesh = cube()
    return TriMesh(mesh.vertices, np.concatenate([mesh.faces, mesh.faces[:1]]))


def test_an_edge_shared_by_three_triangles_is_refused() -> None:
    assert any("more than two" in p for p in check(cube_with_a_face_twice()).problems)


def test_an_empty_part_is_refused_by_name() -> None:
    empty = TriMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    with pytest.raises(MeshCheckFailed, match=r"'lid'.*no triangles"):
        check_or_raise(empty, "lid")


def split_apex(gap: float) -> TriMesh:
    """A tetrahedron whose apex is two vertices ``gap`` apart, joined by two slivers: what a
    boolean leaves where two of its surfaces meet at a point (gap 0: closer than float32)."""
    vertices = np.array(
        [[0, 0, 1], [1, 0, 0], [-0.5, 0.866, 0], [-0.5, -0.866, 0], [gap, gap, 1]],
        dtype=np.float32,
    )
    faces = np.array([(1, 3, 2), (0, 1, 2), (4, 2, 3), (4, 3, 1), (4, 0, 2), (0, 4, 1)])
    return TriMesh(vertices, faces)


def test_an_edge_too_short_for_float32_is_collapsed() -> None:
    assert check(split_apex(1e-3)).ok  # a solid, its short edge real
    broken = check(split_apex(0.0))  # as written to STL: the two ends are one point
    assert not broken.ok and "2 triangles have a repeated corner" in broken.problems
    collapsed = without_slivers(split_apex(0.0))
    stats = check(collapsed)
    assert stats.ok, stats.problems
    assert stats.triangles == 4  # the two slivers gone, nothing else
    assert stats.volume_mm3 == pytest.approx(check(split_apex(1e-3)).volume_mm3, rel=1e-2)


def test_collapsing_slivers_does_not_pass_a_mesh_broken_otherwise() -> None:
    assert not check(without_slivers(cube_with_a_face_twice())).ok
