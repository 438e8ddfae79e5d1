"""``fabflow products add`` then ``fabflow run``: a shop's own model made into files with no
server, on the tenant ``run`` uses; a model that cannot be made is refused with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabflow.cli.app import EXIT_INVALID_INPUT, EXIT_OK
from tests.integration.cli.conftest import fabflow

MEDAL = """// A round medal with a raised rim.
/* [Medal] */
// The medal's diameter
diameter = 30; // [20:1:60]
thickness = 3; // [2:0.5:6]
/* [Hidden] */
$fn = 48;
cylinder(d = diameter, h = thickness);
difference() {
    cylinder(d = diameter, h = thickness + 1);
    translate([0, 0, -1]) cylinder(d = diameter - 4, h = thickness + 3);
}
"""

FLOW = [  # the spec's list form, as `fabflow run` reads it
    {
        "stepDefinitionId": "files",
        "type": "generate-production-files",
        "successStatus": "Files ready",
        "options": {"fileFormat": "stl"},
    }
]


@pytest.mark.usefixtures("env")
def test_add_then_run_makes_the_files_with_no_server(tmp_path: Path) -> None:
    folder = tmp_path / "medal"
    folder.mkdir()
    (folder / "medal.scad").write_text(MEDAL)
    (folder / "README.md").write_text("how to print it")
    added = fabflow("products", "add", str(folder))
    assert added.exit_code == EXIT_OK, added.output
    assert "product medal version 1" in added.output
    assert "left out README.md" in added.output
    shown = fabflow("products", "show", "medal", "--json")
    schema = json.loads(shown.stdout)["parametersSchema"]
    assert schema["properties"]["diameter"]["maximum"] == 60
    assert "$fn" not in schema["properties"]
    listed = fabflow("products", "list")
    assert "medal" in listed.stdout and "nameplate" in listed.stdout
    flow, order = tmp_path / "make.json", tmp_path / "order.json"
    flow.write_text(json.dumps(FLOW))
    line = {"id": "m1", "product": "medal", "parameters": {"diameter": 40}}
    order.write_text(json.dumps({"lines": [line]}))
    ran = fabflow("run", str(flow), str(order), "--json")
    assert ran.exit_code == EXIT_OK, ran.output
    resource = json.loads(ran.stdout[ran.stdout.index("{") :])
    files = resource["files"]
    assert [f["part"] for f in files] == ["model"]
    assert files[0]["bbox"]["max"][0] - files[0]["bbox"]["min"][0] == pytest.approx(40, abs=0.1)
    assert resource["lines"][0]["productVersion"] == 1
    # no server runs: the files are named by their path in the data folder, not a URL
    assert Path(files[0]["path"]).is_file() and "url" not in files[0]
    text = fabflow("run", str(flow), str(order))
    assert f"file: {Path(files[0]['path']).parent.parent}" in text.output


@pytest.mark.usefixtures("env")
def test_a_bad_parameter_or_model_exits_2_with_where(tmp_path: Path) -> None:
    model = tmp_path / "medal.scad"
    model.write_text(MEDAL)
    assert fabflow("products", "add", str(model)).exit_code == EXIT_OK
    flow, order = tmp_path / "make.json", tmp_path / "order.json"
    flow.write_text(json.dumps(FLOW))
    line = {"id": "m1", "product": "medal", "parameters": {"diameter": 90}}
    order.write_text(json.dumps({"lines": [line]}))
    ran = fabflow("run", str(flow), str(order))
    assert ran.exit_code == EXIT_INVALID_INPUT
    assert "/lines/0/parameters/diameter" in ran.output and "60" in ran.output
    evil = tmp_path / "evil.scad"
    evil.write_text('cube(1);\nimport("/etc/passwd");\n')
    refused = fabflow("products", "add", str(evil))
    assert refused.exit_code == EXIT_INVALID_INPUT
    assert "evil.scad:2" in refused.output
