"""A choice after a step that reads no order (a light step) routes on the order all the same:
the worker reads the order columns its expressions name, or the order alone, or all of it;
on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from fabflow.engine.worker import Worker
from fabflow.flows.options import OptionsModel
from fabflow.steps.base import StepContext, StepExecutor, StepResult
from fabflow.steps.registry import register, unregister
from fabflow.store import orders
from fabflow.store.repository import Store

SEEN: list[dict[str, Any]] = []  # the order each light step was handed


class LightStep(StepExecutor):
    """``test-light``: reads nothing of the order but its id (the worker reads no more)."""

    type_name = "test-light"
    options_model = OptionsModel
    needs_order = False

    async def execute(self, ctx: StepContext) -> StepResult:
        SEEN.append(ctx.order)
        return StepResult()


@pytest.fixture
def light() -> Iterator[None]:
    register(LightStep)
    SEEN.clear()
    try:
        yield
    finally:
        unregister(LightStep.type_name)


def flow(when: str) -> list[dict[str, Any]]:
    def step(sid: str, **kw: Any) -> dict[str, Any]:
        return {"stepDefinitionId": sid, "type": "test-light", "successStatus": sid, **kw}

    rules = [{"when": when, "next": "yes"}]
    return [
        step("a", onSuccess="route", options={}),
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "options": {"rules": rules, "otherwise": "no"},
        },
        step("yes", options={}),
        step("no", options={}),
    ]


ORDER = {
    "externalId": "X-1",
    "customer": {"name": "Ada"},
    "lines": [{"product": "ring", "quantity": 1, "parameters": {"material": "gold"}}],
    "data": {"country": "BE"},
}


@pytest.mark.parametrize(
    ("when", "taken"),
    [
        ('order.data.country == "BE"', "yes"),
        ('order.data.country == "US"', "no"),
        ('order.customer.name == "Ada" and order.externalId == "X-1"', "yes"),
        ('order.status == "Created"', "yes"),  # as it was when step a was claimed
        ('order.lines[0].parameters.material == "gold"', "yes"),
        ("order.stepData | length == 0", "yes"),
        ("order.data.rush is defined", "no"),
        ("order.createdAt is defined", "yes"),  # read from the order alone
        ("steps.a is undefined", "yes"),
        ("order.statusHistory | length == 0", "yes"),  # read from the full order
    ],
)
async def test_a_choice_after_a_light_step_routes_on_the_order(
    store: Store, light: None, when: str, taken: str
) -> None:
    tenant = store.ensure_tenant("acme")
    store.save_flow(tenant, "f", flow(when), "F")
    resource, _ = orders.create_order(store, tenant, {**ORDER}, "f")
    order_id = resource["id"]
    worker = Worker(store, {"test-light": LightStep(store.settings)})

    def ended() -> bool:
        state = orders.get_order(store, tenant, order_id)["execution"]["state"]
        return state in ("succeeded", "failed")

    await asyncio.wait_for(worker.run(until=ended), 30)
    order = orders.get_order(store, tenant, order_id)
    attempts = order["execution"]["attempts"]
    assert [a["stepDefinitionId"] for a in attempts] == ["a", "route", taken]
    assert attempts[1]["details"]["next"] == taken
    assert order["execution"]["state"] == "succeeded"
    assert SEEN[-1] == {"id": order_id}  # the step after reads no order: nothing read for it
