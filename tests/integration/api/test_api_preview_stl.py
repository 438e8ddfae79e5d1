"""``POST /api/products/{name}/preview/{part}.stl``: the part the preview pictured, as the
binary STL the web UI's 3D view draws, checked like the preview and sized as the preview says."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

STL_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])


def stl_size(body: bytes) -> list[float]:
    """The X, Y, Z extent (mm) of a binary STL's triangles."""
    count = int.from_bytes(body[80:84], "little")
    assert len(body) == 84 + 50 * count
    corners = np.frombuffer(body, STL_TRIANGLE, count, 84)["corners"].reshape(-1, 3)
    return [float(v) for v in corners.max(axis=0) - corners.min(axis=0)]


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
async def test_the_previewed_part_comes_as_stl_of_the_previews_size(
    acme: httpx.AsyncClient,
) -> None:
    parameters = {"text": "Ada", "width": 90, "height": 30}
    preview = await acme.post("/api/products/nameplate/preview", json=parameters)
    assert preview.status_code == 200, preview.text
    part = preview.json()["parts"][0]

    stl = await acme.post(f"/api/products/nameplate/preview/{part['part']}.stl", json=parameters)
    assert stl.status_code == 200, stl.text
    assert stl.headers["content-type"] == "model/stl"
    assert not stl.content.lower().startswith(b"solid")  # binary, not ASCII
    assert len(stl.content) == 84 + 50 * part["triangles"]
    assert stl_size(stl.content) == pytest.approx(part["sizeMm"], abs=1e-3)


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
async def test_bad_parameters_unknown_parts_and_other_tenants_models_are_refused(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    bad = await acme.post(
        "/api/products/nameplate/preview/nameplate.stl", json={"text": "A", "width": 1}
    )
    assert bad.status_code == 422
    assert [p["pointer"] for p in bad.json()["problems"]] == ["/width"]
    missing = await acme.post("/api/products/nameplate/preview/lid.stl", json={"text": "A"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    tag = b"cube([20, 10, 3]);\n"
    added = await acme.post(
        "/api/products", data={"name": "tag"}, files={"files": ("tag.scad", tag)}
    )
    assert added.status_code == 201, added.text
    theirs = await globex.post("/api/products/tag/preview/tag.stl", json={})
    assert theirs.status_code == 404
    mine = await acme.post(f"/api/products/tag/preview/{added.json()['parts'][0]}.stl", json={})
    assert mine.status_code == 200, mine.text
    assert stl_size(mine.content) == pytest.approx([20, 10, 3], abs=1e-3)
