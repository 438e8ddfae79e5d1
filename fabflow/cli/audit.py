"""``fabflow audit``: what operators did outside any one order, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from fabflow.cli.admin import JsonOpt, TenantOpt, _print_json, _store, _table
from fabflow.cli.app import app
from fabflow.store import orders
from fabflow.store.audit import MAX_PAGE, audit_trail


@app.command("audit")
def audit(
    tenant: TenantOpt,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE, help="How many events.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The tenant's audit trail: flows saved and archived, API keys created and revoked, bulk
    retries and cancels, with who did each and when. (What was done to one order is on
    `fabflow orders show`.)"""
    with _store() as store:
        trail = audit_trail(store, orders.find_tenant(store, tenant), limit=limit)
    if as_json:
        _print_json(trail)
        return
    rows = [[e["at"], e["kind"], e["subject"], e["by"] or ""] for e in trail["events"]]
    _table(rows, ["AT", "WHAT", "SUBJECT", "BY"])
