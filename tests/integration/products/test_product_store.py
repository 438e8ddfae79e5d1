"""Products are tenant data, versioned: each upload adds a version, the newest is current,
older versions stay readable (orders pinned to them), and one tenant never sees another's."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from fabflow.errors import Conflict, InvalidProduct, NotFound
from fabflow.files import LocalFileStore
from fabflow.production.scad.bundle import ProductBundle, bundle_from_path, bundle_from_upload
from fabflow.store import products
from fabflow.store.repository import Store

TAG = b'name = "Ada"; // 12\nlinear_extrude(2) text(name);\n'


def _new(bundle: ProductBundle, title: str = "Tag") -> products.NewProduct:
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}}}
    return products.NewProduct(bundle, title, "", schema, ["model"])


def test_each_upload_adds_a_version_and_the_newest_is_current(store: Store, tmp_path: Path) -> None:
    files = LocalFileStore(tmp_path / "files")
    acme, other = store.ensure_tenant("acme"), store.ensure_tenant("other")
    first = products.save_product(
        store, files, acme, "tag", _new(bundle_from_upload([("tag.scad", TAG)])), exists=False
    )
    second = products.save_product(
        store,
        files,
        acme,
        "tag",
        _new(bundle_from_upload([("tag.scad", TAG + b"// v2\n")]), "Tag 2"),
        exists=True,
    )
    assert (first.version, second.version) == (1, 2)
    assert products.product_version(store, acme, "tag").title == "Tag 2"
    assert products.product_version(store, acme, "tag", 1).source == TAG.decode()
    assert [v["version"] for v in products.product_versions(store, acme, "tag")] == [1, 2]
    assert [p.name for p in products.list_products(store, acme)] == ["tag"]
    assert products.list_products(store, other) == []
    with pytest.raises(NotFound):
        products.product_version(store, other, "tag")
    with pytest.raises(Conflict):
        products.save_product(store, files, acme, "tag", _new(first_bundle()), exists=False)
    with pytest.raises(NotFound):
        products.save_product(store, files, other, "tag", _new(first_bundle()), exists=True)
    stored = files.local_path(second.archive_key)
    assert stored is not None
    assert zipfile.ZipFile(stored).read("tag.scad") == TAG + b"// v2\n"


def first_bundle() -> ProductBundle:
    return bundle_from_upload([("tag.scad", TAG)])


def test_a_folder_keeps_what_a_model_reads_and_says_what_it_left_out(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "medal.scad").write_bytes(b"include <lib/shapes.scad>\n")
    (tmp_path / "lib" / "shapes.scad").write_bytes(b"module disc() {}\n")
    (tmp_path / "logo.svg").write_bytes(b"<svg/>")
    (tmp_path / "README.md").write_bytes(b"# medal")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_bytes(b"x")
    bundle = bundle_from_path(tmp_path)
    assert bundle.main == "medal.scad"
    assert sorted(bundle.files) == ["lib/shapes.scad", "logo.svg", "medal.scad"]
    assert bundle.skipped == ("README.md",)
    assert bundle.sha256 == bundle_from_path(tmp_path).sha256  # the same files, the same archive


def test_a_zipped_folder_is_unwrapped(tmp_path: Path) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("medal/medal.scad", "cube(1);")
        archive.writestr("medal/part.stl", "solid x\nendsolid x\n")
    bundle = bundle_from_upload([("medal.zip", data.getvalue())])
    assert bundle.main == "medal.scad" and sorted(bundle.files) == ["medal.scad", "part.stl"]


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([("../evil.scad", b"")], "climb out"),
        ([("/etc/evil.scad", b"")], "relative"),
        ([("a\\b.scad", b"")], "relative"),
        ([("a.scad", b""), ("b.scad", b"")], "name the main one"),
        ([("notes.txt", b"")], "needs a .scad file"),
        ([(f"p{i}.stl", b"") for i in range(201)] + [("m.scad", b"")], "at most 200"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(
    items: list[tuple[str, bytes]], words: str
) -> None:
    with pytest.raises(InvalidProduct) as refused:
        bundle_from_upload(items)
    said = refused.value.message + " ".join(p.message for p in refused.value.problems)
    assert words in said, said
