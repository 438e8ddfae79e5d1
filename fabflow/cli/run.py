"""``fabflow run``: one order through one flow on the embedded store, with its timeline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fabflow.cli.app import EXIT_FAILED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_WAITING, app
from fabflow.cli.common import open_store, read_json, settings_from_env
from fabflow.cli.validate import check_file, problem_line
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.errors import InvalidOrder
from fabflow.files import safe_part
from fabflow.flows.model import Flow
from fabflow.order_input import check_order
from fabflow.production.line_check import FindProduct
from fabflow.steps.registry import load_entry_points
from fabflow.store import orders
from fabflow.store.products import find_product
from fabflow.store.repository import Store

LOCAL_TENANT = "local"


@app.command()
def run(
    flow_file: Annotated[str, typer.Argument(metavar="FLOW", help="The flow file (JSON).")],
    order_file: Annotated[str, typer.Argument(metavar="ORDER", help="The order file (JSON).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the order resource as JSON.")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the store and files live (env FABFLOW_DATA_DIR).")
    ] = None,
) -> None:
    """Run one order through a flow on the embedded store and print its timeline.

    The order belongs to the tenant `local` (products added with `fabflow products add` are
    its own). Its files stay in the data folder: their paths are printed, since no server
    answers their URLs.

    Exit codes: 0 the execution succeeded; 1 it failed; 2 the flow or the order is invalid
    (every problem is listed); 3 the settings or the store are unusable; 4 a step waits for a
    callback or a confirmation (``fabflow serve`` on the same data folder receives it, and a
    worker continues the order).
    """
    settings = settings_from_env(data_dir=data_dir)
    load_entry_points()
    flow = _flow_or_exit(flow_file)
    store = open_store(settings)
    try:
        tenant = store.ensure_tenant(LOCAL_TENANT)
        order = _order_or_exit(order_file, find_product(store, tenant))
        resource = asyncio.run(_run(store, flow, Path(flow_file).stem, order, as_json))
    finally:
        store.close()
    _local_files(resource, settings.files_dir, tenant)
    if as_json:
        typer.echo(json.dumps(resource, indent=2, ensure_ascii=False))
    else:
        typer.echo(_summary(resource))
    state = resource["execution"]["state"]
    if state == "waiting":
        typer.echo(_waiting_line(resource), err=True)
        raise typer.Exit(EXIT_WAITING)
    raise typer.Exit(EXIT_OK if state == "succeeded" else EXIT_FAILED)


def _local_files(resource: dict[str, Any], files_dir: Path, tenant: str) -> None:
    """Each file's path in the data folder instead of URLs no server answers."""
    folder = files_dir / safe_part(tenant) / safe_part(resource["id"])
    for record in resource["files"]:
        record.pop("url", None)
        record.pop("previewUrl", None)
        record["path"] = str((folder / record["name"]).resolve())


def _waiting_line(resource: dict[str, Any]) -> str:
    step = resource["execution"]["currentStep"]
    wait = resource["execution"]["attempts"][-1].get("wait") or {}
    what = "a callback" if wait.get("kind") == "callback" else "a confirmation"
    return (
        f"order {resource['id']} waits at step {step!r} for {what} until {wait.get('until')}:"
        " run `fabflow serve` on this data folder to receive it"
    )


def _flow_or_exit(flow_file: str) -> Flow:
    checked = check_file(flow_file)
    for problem in checked.result.problems:
        typer.echo(problem_line(flow_file, problem), err=True)
    if checked.result.flow is None:
        raise typer.Exit(EXIT_INVALID_INPUT)
    return checked.result.flow


def _order_or_exit(order_file: str, find: FindProduct) -> dict[str, Any]:
    raw, error = read_json(order_file)
    if error is not None:
        typer.echo(f"{order_file}: {error}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT)
    try:
        return check_order(raw, find=find)
    except InvalidOrder as exc:
        for problem in exc.problems:
            typer.echo(f"{order_file}: {problem.pointer or '/'}: {problem.message}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None


async def _run(
    store: Store, flow: Flow, flow_id: str, order: dict[str, Any], quiet: bool
) -> dict[str, Any]:
    tenant = store.ensure_tenant(LOCAL_TENANT)
    store.save_flow(tenant, flow_id, flow.to_json(), flow.name, flow.description, flow.deadline)
    order["flowId"] = flow_id
    resource, created = orders.create_order(store, tenant, order, flow_id)
    if not created:
        typer.echo(
            f"an order with externalId {order['externalId']!r} exists already ({resource['id']}):"
            " showing it; give the order a new externalId to run it again",
            err=True,
        )
        return resource
    if not quiet:
        typer.echo(f"order {resource['id']} on flow {flow_id!r}", err=True)
    progress = _Progress(store, tenant, resource["id"], quiet)
    async with started_executors(store.settings) as executors:
        worker = Worker(store, executors, concurrency=4)
        await worker.run(until=progress.ended)
    return orders.get_order(store, tenant, resource["id"])


class _Progress:
    """Prints each attempt as it ends (to stderr), and says when the execution has ended."""

    def __init__(self, store: Store, tenant: str, order_id: str, quiet: bool) -> None:
        self.store, self.tenant, self.order_id, self.quiet = store, tenant, order_id, quiet
        self.after = 0

    def ended(self) -> bool:
        for event in orders.order_events(self.store, self.tenant, self.order_id, self.after):
            self.after = event["id"]
            if not self.quiet and event["kind"] not in ("order_created",):
                typer.echo("  " + _event_line(event), err=True)
            if event["data"].get("executionState") in ("succeeded", "failed", "cancelled"):
                return True
            if event["kind"] == "step_waiting":  # nothing here can end the wait
                return True
        return False


def _event_line(event: dict[str, Any]) -> str:
    data = event["data"]
    parts = [f"{data.get('stepDefinitionId', '?'):<16}", f"{data.get('outcome', event['kind']):<8}"]
    if "status" in data:
        parts.append(f"status={data['status']!r}")
    if "error" in data:
        parts.append(f"{data['error']['type']}: {data['error']['message']}")
    then = data.get("next")
    if then and then.get("inSeconds"):
        parts.append(f"(retry in {then['inSeconds']:g} s)")
    return " ".join(parts)


def _summary(resource: dict[str, Any]) -> str:
    lines = [f"order {resource['id']}  flow {resource['flowId']} v{resource['flowVersion']}", ""]
    lines.append(f"  {'step':<16} {'try':>3}  {'outcome':<9} {'duration':>10}  detail")
    for a in resource["execution"]["attempts"]:
        duration = "-" if a["durationMs"] is None else f"{a['durationMs']:.0f} ms"
        detail = ""
        if a["error"]:
            detail = f"{a['error']['type']}: {a['error']['message']}"
        step, tries, outcome = a["stepDefinitionId"], a["attempt"], a["outcome"]
        lines.append(f"  {step:<16} {tries:>3}  {outcome:<9} {duration:>10}  {detail}")
    lines.append("")
    history = " -> ".join(h["status"] for h in resource["statusHistory"]) or "(none)"
    lines.append(f"status history: {history}")
    for f in resource["files"]:
        lines.append(
            f"file: {f['path']}  {f.get('bytes', '?')} bytes  sha256 {f.get('sha256', '?')}"
        )
    state = resource["execution"]["state"]
    lines.append(f"execution {state}; order status {resource['status']!r}")
    return "\n".join(lines)
