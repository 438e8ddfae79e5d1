"""``fabflow orders list|show|retry-now`` on a real store (SQLite and PostgreSQL): an order
whose step fails and waits an hour for its retry shows as unhealthy, and Retry now runs that
retry at once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from fabflow.cli.app import EXIT_FAILED
from fabflow.engine.runtime import started_executors
from fabflow.engine.worker import Worker
from fabflow.store import orders
from fabflow.store.repository import Store
from tests.integration.cli.conftest import fabflow
from tests.support import executors as test_steps

HOUR_MS = 3_600_000
FLAKY = {
    "stepDefinitionId": "print",
    "type": "test-script",
    "successStatus": "Printed",
    "options": {"failAttempts": 1},
    "retry": {"maxAttempts": 3, "initialDelay": HOUR_MS, "maxDelay": HOUR_MS},
}


def latest_attempt(store: Store, tenant: str, order_id: str) -> dict[str, Any]:
    return dict(orders.get_order(store, tenant, order_id)["execution"]["attempts"][-1])


async def run_worker_until(store: Store, done: Any) -> None:
    """A worker runs (with the test step type installed) until ``done()`` is true."""
    with test_steps.installed():
        async with started_executors(store.settings) as executors:
            worker = Worker(store, executors, concurrency=2)
            task = asyncio.create_task(worker.run())
            try:
                async with asyncio.timeout(10):
                    while not done():
                        await asyncio.sleep(0.02)
            finally:
                worker.stop()
                await task


@pytest.mark.usefixtures("env")
async def test_retry_now_runs_a_failing_steps_next_attempt_at_once(store: Store) -> None:
    tenant = store.ensure_tenant("acme")
    with test_steps.installed():
        store.save_flow(tenant, "flaky", [FLAKY], "Flaky")
    order_id = orders.create_order(store, tenant, {"customer": {"name": "Ada"}}, "flaky")[0]["id"]
    await run_worker_until(store, lambda: latest_attempt(store, tenant, order_id)["attempt"] == 2)

    # This process has no test-script step type now, as an operator's shell would not.
    shown = fabflow("orders", "show", order_id, "--tenant", "acme")
    assert shown.exit_code == 0, shown.output
    queued = latest_attempt(store, tenant, order_id)
    next_at = queued["scheduledAt"]
    reason = f"retrying: attempt 2 of 3, next at {next_at}, last error: attempt 1 told to fail"
    assert f"  health unhealthy: {reason}\n" in shown.stdout
    assert f"  print #2  queued  at {next_at}\n" in shown.stdout
    listed = fabflow("orders", "list", "--tenant", "acme", "--health", "unhealthy", "--json")
    assert [o["id"] for o in json.loads(listed.stdout)["orders"]] == [order_id]

    now = fabflow("orders", "retry-now", order_id, "--tenant", "acme", "--json")
    assert now.exit_code == 0, now.output
    scheduled = json.loads(now.stdout)["execution"]["attempts"][-1]["scheduledAt"]
    assert _seconds(scheduled) <= time.time() < _seconds(next_at) - 3000
    await run_worker_until(
        store, lambda: latest_attempt(store, tenant, order_id)["outcome"] == "success"
    )
    shown = fabflow("orders", "show", order_id, "--tenant", "acme")
    assert "  health healthy\n" in shown.stdout

    again = fabflow("orders", "retry-now", order_id, "--tenant", "acme")
    assert again.exit_code == EXIT_FAILED
    assert f"error: order {order_id} has no retry waiting" in again.stderr


@pytest.mark.usefixtures("env")
def test_list_takes_every_execution_state_and_shows_health(store: Store) -> None:
    tenant = store.ensure_tenant("acme")
    with test_steps.installed():
        store.save_flow(tenant, "flaky", [FLAKY], "Flaky")
    orders.create_order(store, tenant, {"customer": {"name": "Ada"}}, "flaky")
    table = fabflow("orders", "list", "--tenant", "acme")
    assert table.stdout.split("\n")[0].split() == [
        "ID", "EXTERNAL", "FLOW", "STATE", "HEALTH", "STEP", "STATUS", "CREATED"
    ]  # fmt: skip
    assert table.stdout.split("\n")[1].split()[2:6] == ["pending", "healthy", "print", "Created"]
    waiting = fabflow("orders", "list", "--tenant", "acme", "--state", "waiting", "--json")
    assert waiting.exit_code == 0 and json.loads(waiting.stdout)["orders"] == []
    wrong = fabflow("orders", "list", "--tenant", "acme", "--state", "stuck")
    assert wrong.exit_code == 2 and "waiting" in wrong.output  # the choices are listed


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
