"""``fabflow orders confirm|reject``: a person's answer to an order that waits for one (a
``manual-confirmation`` step). Exit 1 when the order is unknown or waits for no confirmation."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from fabflow.cli.admin import JsonOpt, OrderArg, TenantOpt, _act, orders_app
from fabflow.store.orders import confirmations

CommentOpt = Annotated[
    str, typer.Option("--comment", help="Why, in a few words (a rejection's error message).")
]


def acting_user() -> str:
    """Who answers, for the record: the operating system's user running the command."""
    try:
        return f"cli, user {getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "cli"


@orders_app.command("confirm")
def orders_confirm(
    order_id: OrderArg, tenant: TenantOpt, comment: CommentOpt = "", as_json: JsonOpt = False
) -> None:
    """Confirm the order's wait: the flow continues on the step's onSuccess."""
    by = acting_user()
    _act(tenant, as_json, lambda store, t: confirmations.confirm(store, t, order_id, by, comment))


@orders_app.command("reject")
def orders_reject(
    order_id: OrderArg, tenant: TenantOpt, comment: CommentOpt = "", as_json: JsonOpt = False
) -> None:
    """Reject the order's wait: the flow takes the step's onError (error type "rejected")."""
    by = acting_user()
    _act(tenant, as_json, lambda store, t: confirmations.reject(store, t, order_id, by, comment))
