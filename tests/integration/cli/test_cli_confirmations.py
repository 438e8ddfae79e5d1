"""``fabflow orders confirm|reject`` on a real store (SQLite and PostgreSQL): an order waits for
a person after a real worker ran its ``manual-confirmation`` step, then the CLI answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fabflow.cli.app import EXIT_FAILED
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.integration.cli.conftest import fabflow

CHECK = {
    "stepDefinitionId": "check",
    "type": "manual-confirmation",
    "successStatus": "Checked",
    "options": {"prompt": "Is {{ order.customer.name }} spelt right?"},
}


async def waiting_order(store: Store) -> tuple[str, str]:
    """(tenant id, order id) of an order whose execution waits for a confirmation."""
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "check", [CHECK], "Check")
    order, _ = orders.create_order(store, tenant, {"customer": {"name": "Ada"}}, "check")
    async with started_executors(store.settings) as executors:
        worker = Worker(store, executors, concurrency=2)
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(10):
                while execution(store, tenant, order["id"])["state"] != "waiting":
                    await asyncio.sleep(0.02)
        finally:
            worker.stop()
            await task
    return tenant, str(order["id"])


def execution(store: Store, tenant: str, order_id: str) -> dict[str, Any]:
    return dict(orders.get_order(store, tenant, order_id)["execution"])


@pytest.mark.usefixtures("env")
async def test_confirm_ends_the_wait_and_says_so(store: Store) -> None:
    tenant, order_id = await waiting_order(store)

    done = fabflow("orders", "confirm", order_id, "--tenant", "acme", "--comment", "spelt right")
    assert done.exit_code == 0, done.output
    assert "execution succeeded" in done.stdout
    ended = execution(store, tenant, order_id)
    assert ended["state"] == "succeeded"
    resolution = ended["attempts"][0]["wait"]["resolution"]
    assert resolution["outcome"] == "success" and resolution["message"] == "spelt right"
    assert resolution["by"].startswith("cli")

    again = fabflow("orders", "confirm", order_id, "--tenant", "acme")
    assert again.exit_code == EXIT_FAILED
    assert again.stderr == f"error: order {order_id} is not waiting for a confirmation\n"


@pytest.mark.usefixtures("env")
async def test_reject_takes_the_error_path_with_the_comment(store: Store) -> None:
    tenant, order_id = await waiting_order(store)

    done = fabflow("orders", "reject", order_id, "--tenant", "acme", "--comment", "Ada has 2 d's")
    assert done.exit_code == 0, done.output
    ended = execution(store, tenant, order_id)
    assert ended["state"] == "failed"
    first = ended["attempts"][0]
    assert first["error"] == {"type": "rejected", "message": "Ada has 2 d's"}
    assert "rejected: Ada has 2 d's" in done.stdout  # the attempt's line

    unknown = fabflow("orders", "reject", "ord_nope", "--tenant", "acme", "--json")
    assert unknown.exit_code == EXIT_FAILED
    assert unknown.stderr == "error: no order 'ord_nope'\n"
