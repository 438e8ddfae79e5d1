"""``fabflow products``: a tenant's products made from OpenSCAD models, and the built-in ones.

``products add`` reads a ``.scad`` file, a folder or a zip, checks the model whole (its
Customizer parameters, the files it reads, that every part renders with its defaults) and adds
it as the product's next version. ``--tenant`` defaults to the tenant ``fabflow run`` uses, so
``products add`` then ``run`` works with no server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from fabflow.cli.admin import JsonOpt, _print_json, _store, _table
from fabflow.cli.app import EXIT_INVALID_INPUT, app
from fabflow.cli.run import LOCAL_TENANT
from fabflow.errors import InvalidProduct
from fabflow.files import LocalFileStore
from fabflow.production.registry import catalogue
from fabflow.production.scad.bundle import bundle_from_path
from fabflow.store import products as stored

products_app = typer.Typer(
    help="Add, list and show products: OpenSCAD models with Customizer annotations, and the"
    " built-in ones.",
    no_args_is_help=True,
)
app.add_typer(products_app, name="products")

TenantOpt = Annotated[
    str, typer.Option("--tenant", help="The tenant's name (default: the one `fabflow run` uses).")
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The product's name.")]


@products_app.command("add")
def products_add(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="A .scad file, a folder with one, or a zip.")
    ],
    tenant: TenantOpt = LOCAL_TENANT,
    name: Annotated[
        str | None, typer.Option(help="The name order lines use (default: the main file's).")
    ] = None,
    main: Annotated[
        str | None, typer.Option(help="The main .scad file in a folder of several.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="A title for people.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a product made from an OpenSCAD model, or a new version of it. The model is checked
    whole first: exit 2 with every problem (file:line: reason) when its parameters cannot be
    read, it reads a file outside its folder, or it does not render with its defaults."""
    try:
        bundle = bundle_from_path(path, main)
        product_name = name or _name_of(path, bundle.main)
        typer.echo(f"checking {bundle.main} ({len(bundle.files)} files): rendering…", err=True)
        with _store() as store:
            files = LocalFileStore(store.settings.files_dir)
            version, renderers = stored.add_product(
                store, files, store.ensure_tenant(tenant), product_name, bundle, title=title
            )
    except InvalidProduct as exc:
        for problem in exc.problems or []:
            typer.echo(f"{problem.pointer or path}: {problem.message}", err=True)
        if not exc.problems:
            typer.echo(f"{path}: {exc.message}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    for skipped in bundle.skipped:
        typer.echo(f"left out {skipped}: not a file a model reads", err=True)
    if as_json:
        _print_json({**version.resource(), "renderers": renderers})
        return
    made = ", ".join(f"{part} ({renderer})" for part, renderer in renderers.items())
    typer.echo(f"product {version.name} version {version.version} of tenant {tenant}: {made}")


def _name_of(path: Path, main: str) -> str:
    """A product name from the folder's or file's name: lowercase, '-' for what is not."""
    stem = path.name if path.is_dir() else Path(main).stem
    return re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_") or "model"


@products_app.command("list")
def products_list(tenant: TenantOpt = LOCAL_TENANT, as_json: JsonOpt = False) -> None:
    """Every product an order line of TENANT can name: built-in and the tenant's own."""
    with _store() as store:
        own = [p.resource() for p in stored.list_products(store, store.ensure_tenant(tenant))]
    builtin = [{**p, "kind": "builtin"} for p in catalogue()]
    if as_json:
        _print_json({"products": builtin + own})
        return
    rows = [[p["name"], p["kind"], str(p.get("version", "")), p["title"]] for p in builtin + own]
    _table(rows, ["NAME", "KIND", "VERSION", "TITLE"])


@products_app.command("show")
def products_show(
    name: NameArg,
    tenant: TenantOpt = LOCAL_TENANT,
    version: Annotated[
        int | None, typer.Option(min=1, help="A version (default: current).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One product's parameters (as a table, then their JSON Schema), parts and files."""
    found = next((p | {"kind": "builtin"} for p in catalogue() if p["name"] == name), None)
    if found is None or version is not None:
        with _store() as store:
            tenant_id = store.ensure_tenant(tenant)
            found = stored.product_version(store, tenant_id, name, version).resource()
    if as_json:
        _print_json(found)
        return
    _describe(found)


def _describe(product: dict[str, Any]) -> None:
    version = f" version {product['version']}" if "version" in product else ""
    typer.echo(f"{product['name']}{version} ({product['kind']}): {product['title']}")
    if product.get("description"):
        typer.echo(product["description"])
    if product.get("parts"):
        typer.echo(f"parts: {', '.join(product['parts'])}")
    schema = product["parametersSchema"]
    rows = [_parameter_row(key, spec) for key, spec in schema.get("properties", {}).items()]
    if rows:
        _table(rows, ["PARAMETER", "TYPE", "DEFAULT", "ALLOWED"])
    typer.echo("JSON Schema of the parameters:")
    _print_json(schema)


def _parameter_row(key: str, spec: dict[str, Any]) -> list[str]:
    allowed = ""
    if "enum" in spec:
        allowed = ", ".join(str(v) for v in spec["enum"])
    elif "minimum" in spec or "maximum" in spec:
        allowed = f"{spec.get('minimum', '')}..{spec.get('maximum', '')}"
    elif "maxLength" in spec:
        allowed = f"at most {spec['maxLength']} characters"
    kind = spec.get("type", "")
    return [key, str(kind), str(spec.get("default", "")), allowed]
