"""Operators' commands: API keys, orders, workers, and ``fabflow demo``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from fabflow.cli.app import EXIT_FAILED, EXIT_INVALID_INPUT, app
from fabflow.cli.common import open_store, settings_from_env, with_secret_key
from fabflow.errors import Conflict, InvalidInput, NotFound
from fabflow.lifecycle.health import HealthState
from fabflow.lifecycle.states import ExecutionState
from fabflow.order_input import patched_data
from fabflow.store import orders
from fabflow.store.orders import OrderFilter
from fabflow.store.orders.bulk import Action, bulk_action
from fabflow.store.repository import Store

apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
orders_app = typer.Typer(help="Follow and act on a tenant's orders.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(orders_app, name="orders")

TenantOpt = Annotated[str, typer.Option("--tenant", help="The tenant's name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OrderArg = Annotated[str, typer.Argument(metavar="ORDER_ID")]


@contextmanager
def _store(with_key: bool = False) -> Iterator[Store]:
    """The configured store (``with_key``: and the key of tenant secrets); NotFound and
    Conflict become one line on stderr and exit 1, refused input a line per problem and
    exit 2."""
    settings = settings_from_env()
    store = open_store(with_secret_key(settings) if with_key else settings)
    try:
        yield store
    except (NotFound, Conflict) as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except InvalidInput as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for problem in exc.problems[1:]:
            typer.echo(f"  {problem.pointer}: {problem.message}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    finally:
        store.close()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# -- API keys -----------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    tenant: TenantOpt,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create a key for TENANT (created if new). The key is shown once, as the last line."""
    with _store() as store:
        key_id, secret = store.create_api_key(tenant, label[:100], CLI_ACTOR)
    typer.echo(f"tenant {tenant}: key {key_id} created; it is shown once, keep it safe:", err=True)
    typer.echo(secret)


@apikey_app.command("list")
def apikey_list(as_json: JsonOpt = False) -> None:
    """Every key (never the secret: only its first characters)."""
    with _store() as store:
        keys = store.list_api_keys()
    if as_json:
        _print_json(keys)
        return
    rows = [
        [k["id"], k["tenant"], k["label"], k["prefix"] + "…", k["createdAt"], k["revokedAt"] or ""]
        for k in keys
    ]
    _table(rows, ["ID", "TENANT", "LABEL", "KEY", "CREATED", "REVOKED"])


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with _store() as store:
        store.revoke_api_key(key_id, CLI_ACTOR)
    typer.echo(f"key {key_id} revoked")


# -- orders -------------------------------------------------------------------------------


def _order_line(order: dict[str, Any]) -> list[str]:
    ex = order["execution"]
    return [
        order["id"],
        order["externalId"] or "",
        order["flowId"],
        ex["state"],
        order["health"]["state"],
        ex["currentStep"] or "",
        order["status"] or "",
        order["createdAt"],
    ]


@orders_app.command("list")
def orders_list(
    tenant: TenantOpt,
    status: Annotated[str | None, typer.Option(help="Only orders with this status.")] = None,
    state: Annotated[ExecutionState | None, typer.Option(help="Only this execution state.")] = None,
    health: Annotated[HealthState | None, typer.Option(help="Only orders in this health.")] = None,
    flow: Annotated[str | None, typer.Option(help="Only orders of this flow.")] = None,
    q: Annotated[str | None, typer.Option(help="Text in id, externalId, customer.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: Annotated[str | None, typer.Option(help="nextCursor of a previous page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The tenant's orders, newest first."""
    flt = orders.OrderFilter(
        status=status,
        state=None if state is None else state.value,
        health=health,
        flow_id=flow,
        q=q,
    )
    with _store() as store:
        found, next_cursor = orders.list_orders(
            store, orders.find_tenant(store, tenant), flt, cursor, limit
        )
    if as_json:
        _print_json({"orders": found, "nextCursor": next_cursor})
        return
    header = ["ID", "EXTERNAL", "FLOW", "STATE", "HEALTH", "STEP", "STATUS", "CREATED"]
    _table([_order_line(o) for o in found], header)
    if next_cursor:
        typer.echo(f"more: --cursor {next_cursor}", err=True)


def _attempt_line(a: dict[str, Any]) -> str:
    took = f"{a['durationMs']:.0f} ms" if a["durationMs"] is not None else ""
    if a["outcome"] == "queued":
        took = f"at {a['scheduledAt']}"
    elif a["outcome"] == "waiting" and a["wait"]:
        took = f"for a {a['wait']['kind']} until {a['wait']['until']}"
    error = f"  {a['error']['type']}: {a['error']['message']}" if a["error"] else ""
    return f"  {a['stepDefinitionId']} #{a['attempt']}  {a['outcome']}  {took}{error}"


def _show(order: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(order)
        return
    ex = order["execution"]
    typer.echo(f"order {order['id']} ({order['externalId'] or 'no externalId'})")
    typer.echo(f"  flow {order['flowId']} v{order['flowVersion']}, execution {ex['state']}")
    typer.echo(f"  status {order['status']!r}, current step {ex['currentStep']!r}")
    health = order["health"]
    typer.echo(
        f"  health {health['state']}" + (f": {health['reason']}" if health["reason"] else "")
    )
    for attempt in ex["attempts"]:
        typer.echo(_attempt_line(attempt))
    for f in order["files"]:
        typer.echo(f"  file {f['name']}  {f['bytes']} bytes  sha256 {f['sha256']}")


def _act(tenant: str, as_json: bool, action: Callable[[Store, str], dict[str, Any]]) -> None:
    with _store() as store:
        order = action(store, orders.find_tenant(store, tenant))
    _show(order, as_json)


@orders_app.command("show")
def orders_show(order_id: OrderArg, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """One order: its status, execution, every attempt and its files."""
    _act(tenant, as_json, lambda store, t: orders.get_order(store, t, order_id))


CLI_ACTOR = "cli"  # who acted, on the order's events, for commands run on the store
OptionalOrder = Annotated[
    str | None,
    typer.Argument(
        metavar="ORDER_ID", help="One order; or, left out, the orders the options keep."
    ),
]
StateOpt = Annotated[
    ExecutionState | None, typer.Option("--state", help="Every order in this state (bulk).")
]
FlowOpt = Annotated[str | None, typer.Option("--flow", help="Every order of this flow (bulk).")]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="Every order with this status (bulk).")
]


@orders_app.command("retry")
def orders_retry(
    tenant: TenantOpt,
    order_id: OptionalOrder = None,
    state: StateOpt = None,
    flow: FlowOpt = None,
    status: StatusOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the failed (or cancelled) step again, then continue the flow. Without ORDER_ID,
    every order the filters keep (`--state failed --flow erp`): how many were retried, and
    which were skipped and why."""
    if order_id is None:
        _bulk(
            tenant, "retry", OrderFilter(status=status, state=_value(state), flow_id=flow), as_json
        )
        return
    _act(tenant, as_json, lambda store, t: orders.retry(store, t, order_id, CLI_ACTOR))


def _value(state: ExecutionState | None) -> str | None:
    return None if state is None else state.value


def _bulk(tenant: str, action: Action, flt: OrderFilter, as_json: bool) -> None:
    with _store() as store:
        result = bulk_action(
            store, orders.find_tenant(store, tenant), action, flt=flt, by=CLI_ACTOR
        )
    if as_json:
        _print_json(result.as_json())
        return
    done = "retried" if action == "retry" else "cancelled"
    typer.echo(f"{len(result.acted)} of {result.matched} orders {done}")
    for skipped in result.skipped:
        typer.echo(f"skipped {skipped['id']}: {skipped['reason']}")


@orders_app.command("retry-now")
def orders_retry_now(order_id: OrderArg, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Run the queued retry of a failing step now, skipping its backoff."""
    _act(tenant, as_json, lambda store, t: orders.retry_now(store, t, order_id, CLI_ACTOR))


@orders_app.command("rerun")
def orders_rerun(
    order_id: OrderArg,
    step: Annotated[str, typer.Option("--from", help="The stepDefinitionId to start from.")],
    tenant: TenantOpt,
    flow_version: Annotated[
        str | None,
        typer.Option(
            "--flow-version", help='Run on this version of the flow (a number, or "latest").'
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help='A JSON merge patch (RFC 7386) on the order\'s data, e.g. \'{"name": "Ada"}\'; '
            "null removes a key.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the order's flow again from a step, after fixing its flow version or data."""
    version, patch = _flow_version(flow_version), _json_object(data)

    def act(store: Store, tenant_id: str) -> dict[str, Any]:
        row = orders.get_order_row(store, tenant_id, order_id)
        fixed = None if patch is None else patched_data(row["data"] or {}, patch)
        fix = orders.Fix(flow_version=version, data=fixed, data_patch=patch)
        return orders.rerun(store, tenant_id, order_id, step, CLI_ACTOR, fix)

    _act(tenant, as_json, act)


def _flow_version(value: str | None) -> int | str | None:
    if value is None or value == "latest":
        return value
    if not value.isdigit() or int(value) < 1:
        raise typer.BadParameter('a version number, or "latest"', param_hint="--flow-version")
    return int(value)


def _json_object(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        patch = json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    if not isinstance(patch, dict):
        raise typer.BadParameter("a JSON object", param_hint="--data")
    return patch


@orders_app.command("cancel")
def orders_cancel(
    tenant: TenantOpt,
    order_id: OptionalOrder = None,
    state: StateOpt = None,
    flow: FlowOpt = None,
    status: StatusOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel the order's execution (a running step loses its lease). Without ORDER_ID, every
    order the filters keep (`--state waiting --flow erp`)."""
    if order_id is None:
        _bulk(
            tenant, "cancel", OrderFilter(status=status, state=_value(state), flow_id=flow), as_json
        )
        return
    _act(tenant, as_json, lambda store, t: orders.cancel(store, t, order_id, CLI_ACTOR))


# -- workers ------------------------------------------------------------------------------


@app.command()
def workers(as_json: JsonOpt = False) -> None:
    """Workers that ran on this store: state (running, stopping, stopped, or lost: not heard
    of for a lease, killed or cut off), when each was last seen, and the attempts it holds."""
    with _store() as store:
        found = orders.list_workers(store)
    if as_json:
        _print_json(found)
        return
    for w in found:
        typer.echo(
            f"{w['id']}  {w['state']}  pid {w['pid']} on {w['hostname']}  "
            f"concurrency {w['concurrency']}  last seen {w['lastSeenSecondsAgo']:g} s ago"
            f" ({w['heartbeatAt']})"
        )
        for a in w["attempts"]:
            typer.echo(
                f"  attempt {a['attemptId']}: order {a['orderId']}, step {a['stepDefinitionId']}"
            )


# -- the demo -----------------------------------------------------------------------------

DEMO_TENANT = "demo"
DEMO_FLOW_ID = "default"


def demo_flow(echo_url: str) -> list[dict[str, Any]]:
    """The spec's full example flow, changed in one place to run with no network: the
    consume-rest-api step posts to fabflow's own echo route instead of httpbin.org. Emails
    land in the outbox folder when no SMTP server is configured."""
    email: dict[str, Any] = {"recipients": ["neil.benin@twikit.com"]}
    return [
        {
            "stepDefinitionId": "generate",
            "type": "generate-production-files",
            "successStatus": "In progress",
            "options": {"fileFormat": "stl"},
            "onSuccess": "consume",
            "onError": "error",
        },
        {
            "stepDefinitionId": "consume",
            "type": "consume-rest-api",
            "successStatus": "In progress",
            "options": {"uri": echo_url},
            "onSuccess": "email",
            "onError": "error",
        },
        {
            "stepDefinitionId": "email",
            "type": "send-email",
            "successStatus": "Success",
            "options": {**email, "subject": "Success subject", "message": "Success message"},
            "onError": "error",
        },
        {
            "stepDefinitionId": "error",
            "type": "send-email",
            "successStatus": "Failed",
            "options": {**email, "subject": "Error subject", "message": "Error message"},
        },
    ]


DEMO_ORDER = {
    "externalId": "DEMO-1",
    "flowId": DEMO_FLOW_ID,
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "nameplate", "parameters": {"text": "Ada", "width": 80}}],
}


def _load_demo_flow(store: Store, tenant_id: str, echo_url: str) -> None:
    """Save the demo flow, as a new version only when it changed (a new port, say)."""
    steps = demo_flow(echo_url)
    try:
        if store.get_flow(tenant_id, DEMO_FLOW_ID)["steps"] == steps:
            return
    except NotFound:
        pass
    store.save_flow(tenant_id, DEMO_FLOW_ID, steps, "Spec example (offline)")


def _curl(base: str, key: str) -> str:
    """A curl command that creates a demo order (no externalId: each run makes a new one)."""
    body = json.dumps({k: v for k, v in DEMO_ORDER.items() if k != "externalId"})
    return (
        f"curl -s -X POST {base}/api/orders -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Start a demo: what `make run` does.

    Makes a demo tenant and a new API key, loads the spec's example flow adapted to run
    offline, prints a ready curl command, then serves with one worker.
    """
    from fabflow.cli.serve import default_public_url, run_server

    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    # The REST step refuses loopback unless allowed: allow it for this process only.
    probe = settings_from_env()
    settings = settings_from_env(
        public_url=default_public_url(host, port),
        outbound_allow=(*probe.outbound_allow, "127.0.0.1"),
    )
    settings = with_secret_key(settings)
    store = open_store(settings)
    try:
        tenant_id = store.ensure_tenant(DEMO_TENANT)
        _load_demo_flow(store, tenant_id, f"{base}/api/demo/echo")
        _, key = store.create_api_key(DEMO_TENANT, "demo")
    finally:
        store.close()
    typer.echo(f"demo tenant {DEMO_TENANT!r}, flow {DEMO_FLOW_ID!r}; data in {settings.data_dir}")
    typer.echo(f"emails go to {settings.outbox_dir} (no FABFLOW_SMTP_URL set)")
    typer.echo(f"API docs: {base}/api/docs")
    typer.echo("create an order:")
    typer.echo("  " + _curl(base, key))
    typer.echo(f"demo API key: {key}")
    run_server(settings, host, port, 1, demo=True)
