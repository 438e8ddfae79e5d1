"""``fabflow secrets``: a tenant's secrets, read by templates as ``secrets.NAME``.

A value is read from standard input, never from the command line (where ``ps`` and shell
history would keep it), and never printed.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fabflow.cli.admin import JsonOpt, TenantOpt, _print_json, _store, _table
from fabflow.cli.app import EXIT_INVALID_INPUT, app
from fabflow.errors import InvalidInput
from fabflow.store import orders, secrets

secrets_app = typer.Typer(
    help="Set, list and delete a tenant's secrets (templates read secrets.NAME).",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The name templates read.")]


def _refuse(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_INVALID_INPUT)


def _read_value() -> str:
    """The value on standard input; one trailing newline (from echo or a prompt) dropped."""
    if sys.stdin.isatty():
        typer.echo("value (then Enter and Ctrl-D):", err=True)
    value = sys.stdin.read()
    return value[:-1] if value.endswith("\n") else value


@secrets_app.command("set")
def secrets_set(name: NameArg, tenant: TenantOpt) -> None:
    """Set (or replace) secret NAME of TENANT to the value given on standard input:
    `printf %s "$TOKEN" | fabflow secrets set --tenant acme MES_TOKEN`."""
    try:
        secrets.check_name(name)
        value = secrets.check_value(_read_value())
    except InvalidInput as exc:
        raise _refuse(exc.message) from None
    with _store(with_key=True) as store:
        _, created = secrets.set_secret(
            store, orders.find_tenant(store, tenant), name, value, by="cli"
        )
    typer.echo(f"secret {name} of tenant {tenant} {'set' if created else 'replaced'}")


@secrets_app.command("list")
def secrets_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """TENANT's secrets: names and when each was set, never values."""
    with _store() as store:
        found = secrets.list_secrets(store, orders.find_tenant(store, tenant))
    if as_json:
        _print_json(found)
        return
    _table(
        [[s["name"], s["createdAt"], s["updatedAt"]] for s in found], ["NAME", "CREATED", "UPDATED"]
    )


@secrets_app.command("delete")
def secrets_delete(name: NameArg, tenant: TenantOpt) -> None:
    """Delete secret NAME of TENANT: steps that read it fail from now on."""
    with _store() as store:
        secrets.delete_secret(store, orders.find_tenant(store, tenant), name, by="cli")
    typer.echo(f"secret {name} of tenant {tenant} deleted")
