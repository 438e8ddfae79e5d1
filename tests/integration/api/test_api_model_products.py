"""A shop's own product, uploaded as an OpenSCAD model: refused whole when it cannot be made,
checked at intake against its Customizer parameters, pinned by the orders that use it, and
made into checked files by the production step."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from fabflow.store.repository import Store
from tests.integration.api.conftest import run_until_ended

TAG = """// A flat tag with a hole for a key ring.
/* [Tag] */
// How wide the tag is
width = 40; // [20:5:80]
// The hole's diameter
hole = 5; // [3, 5, 8]
shape = "round"; // [round:Rounded, square:Square]

module body() {
    if (shape == "round")
        hull() for (x = [5, width - 5]) translate([x, 5, 0]) cylinder(r = 5, h = 3, $fn = 32);
    else cube([width, 10, 3]);
}
difference() {
    body();
    translate([5, 5, -1]) cylinder(d = hole, h = 10, $fn = 24);
}
"""

FLOW = {
    "id": "make",
    "name": "Make",
    "steps": [
        {
            "stepDefinitionId": "files",
            "type": "generate-production-files",
            "successStatus": "Files ready",
            "options": {"fileFormat": "stl"},
        }
    ],
}


def _upload(name: str | None, source: str, filename: str = "tag.scad") -> dict[str, Any]:
    data = {"name": name} if name else {}
    return {"data": data, "files": [("files", (filename, source.encode(), "text/plain"))]}


async def test_a_model_becomes_a_product_of_its_tenant_only(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    added = await acme.post("/api/products", **_upload("tag", TAG))
    assert added.status_code == 201, added.text
    product = added.json()
    assert (product["name"], product["version"], product["kind"]) == ("tag", 1, "openscad")
    schema = product["parametersSchema"]
    assert schema["properties"]["width"]["minimum"] == 20
    assert schema["properties"]["width"]["maximum"] == 80
    assert product["description"] == "A flat tag with a hole for a key ring."
    listed = {p["name"]: p for p in (await acme.get("/api/products")).json()["products"]}
    assert listed["tag"]["kind"] == "openscad" and listed["nameplate"]["kind"] == "builtin"
    others = {p["name"] for p in (await globex.get("/api/products")).json()["products"]}
    assert "tag" not in others
    assert (await globex.get("/api/products/tag")).status_code == 404
    again = await acme.post("/api/products", **_upload("tag", TAG))
    assert again.status_code == 409, again.text


async def test_an_order_line_is_checked_against_the_model_parameters(
    acme: httpx.AsyncClient,
) -> None:
    assert (await acme.post("/api/products", **_upload("tag", TAG))).status_code == 201
    assert (await acme.post("/api/flows", json=FLOW)).status_code == 201
    line = {"id": "1", "product": "tag", "parameters": {"width": 85, "hole": 4, "shapes": "x"}}
    refused = await acme.post("/api/orders", json={"flowId": "make", "lines": [line]})
    assert refused.status_code == 422, refused.text
    problems = {p["pointer"]: p["message"] for p in refused.json()["problems"]}
    assert set(problems) == {
        "/lines/0/parameters/width",
        "/lines/0/parameters/hole",
        "/lines/0/parameters/shapes",
    }, problems
    assert "80" in problems["/lines/0/parameters/width"]
    assert "8" in problems["/lines/0/parameters/hole"]
    assert "shape" in problems["/lines/0/parameters/shapes"]  # did you mean


async def test_orders_keep_the_version_they_were_accepted_with(
    acme: httpx.AsyncClient, api_store: Store
) -> None:
    assert (await acme.post("/api/products", **_upload("tag", TAG))).status_code == 201
    assert (await acme.post("/api/flows", json=FLOW)).status_code == 201
    line = {"id": "1", "product": "tag", "parameters": {"width": 60, "shape": "square"}}
    first = (await acme.post("/api/orders", json={"flowId": "make", "lines": [line]})).json()
    assert first["lines"][0]["productVersion"] == 1
    thicker = TAG.replace("cube([width, 10, 3])", "cube([width, 10, 6])")
    updated = await acme.put("/api/products/tag", **_upload(None, thicker))
    assert updated.status_code == 200 and updated.json()["version"] == 2, updated.text
    second = (await acme.post("/api/orders", json={"flowId": "make", "lines": [line]})).json()
    assert second["lines"][0]["productVersion"] == 2
    done = [await run_until_ended(api_store, acme, o["id"]) for o in (first, second)]
    assert [d["execution"]["state"] for d in done] == ["succeeded", "succeeded"], done
    volumes = [d["files"][0]["volumeMm3"] for d in done]
    assert volumes[1] == pytest.approx(volumes[0] * 2, rel=0.01)  # 3 mm then 6 mm thick
    assert done[0]["files"][0]["renderer"] in ("manifold", "openscad")


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("include </etc/passwd>\ncube(1);\n", "tag.scad:1"),
        ('import("../secret.stl");\n', "tag.scad:1"),
        (
            "width = 10; // [5:20]\ncube([width, 1, 1]);\nundefined_module();\nsphere(-);\n",
            "tag.scad",
        ),
    ],
)
async def test_a_model_that_cannot_be_made_is_refused_whole(
    acme: httpx.AsyncClient, source: str, words: str
) -> None:
    refused = await acme.post("/api/products", **_upload("bad", source))
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert any(words in p["pointer"] + p["message"] for p in body["problems"]), body
    assert (await acme.get("/api/products/bad")).status_code == 404


GREEDY = """// A plate with count x count studs.
count = 1; // [1:100000]
cube([count * 2, count * 2, 0.5]);
for (i = [0:count - 1], j = [0:count - 1]) translate([i * 2, j * 2, 0]) cube(1);
"""


async def test_a_line_that_renders_forever_fails_in_its_timeout_and_the_worker_goes_on(
    acme: httpx.AsyncClient, api_store: Store
) -> None:
    """Ten million cubes pass intake (the slider allows them) but do not finish: the attempt
    fails with the reason within the step's timeout, and the next order is made."""
    assert (await acme.post("/api/products", **_upload("greedy", GREEDY))).status_code == 201
    flow = {"id": "make", "name": "Make", "steps": [{**FLOW["steps"][0], "timeout": 4000}]}
    assert (await acme.post("/api/flows", json=flow)).status_code == 201

    async def order(count: int) -> dict[str, Any]:
        line = {"id": "1", "product": "greedy", "parameters": {"count": count}}
        return dict(
            (await acme.post("/api/orders", json={"flowId": "make", "lines": [line]})).json()
        )

    heavy, light = await order(3200), await order(2)
    started = time.monotonic()
    failed = await run_until_ended(api_store, acme, heavy["id"])
    assert time.monotonic() - started < 4.0 * 3 + 5  # three attempts of 4 s at most, and backoff
    assert failed["execution"]["state"] == "failed"
    error = failed["execution"]["attempts"][-1]["error"]
    assert error["type"] in ("render", "timeout"), error
    assert "stopped" in error["message"] or "took longer" in error["message"], error
    made = await run_until_ended(api_store, acme, light["id"])
    assert made["execution"]["state"] == "succeeded", made["execution"]["attempts"][-1]["error"]
    assert made["files"][0]["volumeMm3"] == pytest.approx(8.0 + 4 * 0.5, rel=0.01)
