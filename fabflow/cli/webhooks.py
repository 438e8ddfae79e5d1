"""``fabflow webhooks``: a tenant's status webhooks and their delivery logs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fabflow.cli.admin import JsonOpt, TenantOpt, _print_json, _store, _table
from fabflow.cli.app import EXIT_INVALID_INPUT, app
from fabflow.errors import InvalidInput
from fabflow.store import orders, webhooks

webhooks_app = typer.Typer(
    help="Status webhooks: tell a URL when a tenant's orders change.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

WebhookArg = Annotated[str, typer.Argument(metavar="WEBHOOK_ID")]
EVENTS_HELP = "An event type (repeat for more): " + ", ".join(webhooks.EVENT_TYPES)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST each event.")],
    tenant: TenantOpt,
    event: Annotated[list[str], typer.Option("--event", help=EVENTS_HELP)],
    description: Annotated[str, typer.Option(help="What the webhook is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a webhook. Its signing secret is shown once, as the last line."""
    with _store() as store:
        try:
            made = webhooks.create_webhook(
                store, orders.find_tenant(store, tenant), url, event, description
            )
        except InvalidInput as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem.pointer}: {problem.message}", err=True)
            raise typer.Exit(EXIT_INVALID_INPUT) from None
    if as_json:
        _print_json(made)
        return
    typer.echo(f"webhook {made['id']} added; its signing secret is shown once:", err=True)
    typer.echo(made["secret"])


@webhooks_app.command("list")
def list_(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """The tenant's webhooks."""
    with _store() as store:
        found = webhooks.list_webhooks(store, orders.find_tenant(store, tenant))
    if as_json:
        _print_json(found)
        return
    rows = [
        [w["id"], "on" if w["enabled"] else "off", w["url"], ",".join(w["events"])] for w in found
    ]
    _table(rows, ["ID", "ENABLED", "URL", "EVENTS"])


def _delivery_line(d: dict[str, Any]) -> list[str]:
    latency = "" if d["latencyMs"] is None else f"{d['latencyMs']:.0f} ms"
    return [
        str(d["id"]),
        d["type"],
        d["orderId"],
        d["state"],
        str(d["attempts"]),
        "" if d["statusCode"] is None else str(d["statusCode"]),
        latency,
        d["nextAttemptAt"] or d["endedAt"] or "",
        d["error"] or "",
    ]


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: WebhookArg,
    tenant: TenantOpt,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The webhook's delivery log, newest first."""
    with _store() as store:
        page, _ = webhooks.list_deliveries(
            store, orders.find_tenant(store, tenant), webhook_id, None, limit
        )
    if as_json:
        _print_json(page)
        return
    header = ["ID", "TYPE", "ORDER", "STATE", "TRIES", "HTTP", "LATENCY", "NEXT/ENDED", "ERROR"]
    _table([_delivery_line(d) for d in page], header)


@webhooks_app.command("resend")
def resend(
    webhook_id: WebhookArg,
    delivery_id: Annotated[int, typer.Argument(metavar="DELIVERY_ID")],
    tenant: TenantOpt,
) -> None:
    """Send a delivery again (the same event id), by the next running worker."""
    with _store() as store:
        webhooks.resend(store, orders.find_tenant(store, tenant), webhook_id, delivery_id)
    typer.echo(f"delivery {delivery_id} will be sent again")


@webhooks_app.command("remove")
def remove(webhook_id: WebhookArg, tenant: TenantOpt) -> None:
    """Remove a webhook and its delivery log."""
    with _store() as store:
        webhooks.delete_webhook(store, orders.find_tenant(store, tenant), webhook_id)
    typer.echo(f"webhook {webhook_id} removed")
