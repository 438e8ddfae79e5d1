"""``fabflow flows``: a tenant's flows on the store, without a server.

``put`` checks a flow file as ``fabflow validate`` does (exit 2 with every problem) and saves
it as the flow's next version; the same flow again adds no version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fabflow.cli.admin import JsonOpt, TenantOpt, _print_json, _store, _table
from fabflow.cli.app import EXIT_INVALID_INPUT, app
from fabflow.cli.common import read_json
from fabflow.cli.validate import problem_line
from fabflow.errors import NotFound
from fabflow.flows.validate import DEFAULT_MAX_STEPS, load_flow
from fabflow.steps.registry import load_entry_points
from fabflow.store import orders
from fabflow.store.repository import Store

flows_app = typer.Typer(
    help="List, show and save a tenant's flows, and their versions.", no_args_is_help=True
)
app.add_typer(flows_app, name="flows")

FlowArg = Annotated[str, typer.Argument(metavar="FLOW_ID", help="The flow's id.")]


@flows_app.command("list")
def flows_list(
    tenant: TenantOpt,
    archived: Annotated[bool, typer.Option(help="Include archived flows.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """TENANT's flows: id, name, current version, when last changed."""
    with _store() as store:
        found = store.list_flows(orders.find_tenant(store, tenant), include_archived=archived)
    if as_json:
        _print_json({"flows": found})
        return
    rows = [
        [f["id"], f["name"], str(f["currentVersion"]), f["updatedAt"], _archived(f)] for f in found
    ]
    _table(rows, ["ID", "NAME", "VERSION", "UPDATED", ""])


def _archived(flow: dict[str, Any]) -> str:
    return "archived" if flow.get("archived") else ""


@flows_app.command("show")
def flows_show(
    flow_id: FlowArg,
    tenant: TenantOpt,
    version: Annotated[
        int | None, typer.Option(min=1, help="A version (default: current).")
    ] = None,
) -> None:
    """One flow as JSON: its steps at the current version (or --version)."""
    with _store() as store:
        _print_json(store.get_flow(orders.find_tenant(store, tenant), flow_id, version))


@flows_app.command("versions")
def flows_versions(flow_id: FlowArg, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Every version of a flow and when it was saved."""
    with _store() as store:
        found = store.flow_versions(orders.find_tenant(store, tenant), flow_id)
    if as_json:
        _print_json({"versions": found})
        return
    _table([[str(v["version"]), str(v["createdAt"])] for v in found], ["VERSION", "SAVED"])


@flows_app.command("put")
def flows_put(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The flow file (JSON).")],
    tenant: TenantOpt,
    flow_id: Annotated[
        str | None,
        typer.Option("--id", help="The flow's id (default: the file's \"id\", else its name)."),
    ] = None,
) -> None:
    """Check FILE and save it as flow FLOW_ID of TENANT (created if new, else its next version;
    the same flow again adds no version). Exit 2 with every problem if the flow is invalid."""
    load_entry_points()
    raw, error = read_json(str(file))
    if error is not None:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT)
    if isinstance(raw, dict) and "id" in raw:
        flow_id = flow_id or str(raw["id"])
        raw = {k: v for k, v in raw.items() if k != "id"}
    flow_id = flow_id or file.stem
    result = load_flow(json.dumps(raw), name=flow_id, max_steps=DEFAULT_MAX_STEPS)
    for problem in result.problems:
        typer.echo(problem_line(str(file), problem), err=True)
    if result.flow is None:
        raise typer.Exit(EXIT_INVALID_INPUT)
    flow = result.flow
    with _store() as store:
        tenant_id = store.ensure_tenant(tenant)
        before = _current(store, tenant_id, flow_id)
        version = store.save_flow(
            tenant_id, flow_id, flow.to_json(), flow.name, flow.description, flow.deadline, by="cli"
        )
    what = "unchanged at" if version == before else "saved as"
    typer.echo(f"flow {flow_id} of tenant {tenant} {what} version {version}")


def _current(store: Store, tenant_id: str, flow_id: str) -> int | None:
    try:
        return int(store.get_flow(tenant_id, flow_id)["currentVersion"])
    except NotFound:
        return None
