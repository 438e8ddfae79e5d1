"""A template cannot freeze the server: the huge power, the huge repetition, loops nested to
ten billion steps and a gigabyte-wide padding each fail their step (error type ``template``)
well within its timeout, while ``/api/health`` of the same process, whose worker runs them,
keeps answering in under 100 ms."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fabflow.server import create_server
from fabflow.settings import Settings
from fabflow.store.repository import Store
from tests.integration.api.conftest import ENDED, client_for

HOSTILE = {
    "power": "{{ (7**17294403) % 10 }}",
    "repetition": "{{ 'x' * 200000000 }}",
    "nested_loops": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
    "{% endfor %}",
    "padding": "{{ '%1000000000s'|format('x') }}",
    "width": "{{ 'x'|center(1000000000) }}",
    "str_format": "{{ '{:>1000000000}'.format('x') }}",
}


def _flow(message: str) -> dict[str, Any]:
    step = {
        "stepDefinitionId": "tell",
        "type": "send-email",
        "successStatus": "Told",
        "timeout": 5000,
        "retry": 1,
        "options": {"recipients": ["ops@example.com"], "subject": "Order", "message": message},
    }
    return {"id": "mail", "name": "Mail", "steps": [step]}


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_hostile_template_fails_its_step_and_the_api_keeps_answering(
    api_settings: Settings, api_store: Store, keys: dict[str, str], name: str
) -> None:
    served = create_server(api_settings, api_store, workers=1)
    async with served.router.lifespan_context(served), client_for(served, keys["acme"]) as acme:
        saved = await acme.post("/api/flows", json=_flow(HOSTILE[name]))
        assert saved.status_code == 201, saved.text
        started = time.monotonic()
        order_id = (await acme.post("/api/orders", json={"flowId": "mail"})).json()["id"]
        slowest = 0.0
        async with asyncio.timeout(10):
            while True:
                asked = time.monotonic()
                assert (await acme.get("/api/health")).status_code == 200
                slowest = max(slowest, time.monotonic() - asked)
                order = (await acme.get(f"/api/orders/{order_id}")).json()
                if order["execution"]["state"] in ENDED:
                    break
                await asyncio.sleep(0.01)
    took = time.monotonic() - started
    assert order["execution"]["state"] == "failed"
    error = order["execution"]["attempts"][-1]["error"]
    assert error["type"] == "template", error
    assert took < 5.0, took  # within the step's timeout
    assert slowest < 0.1, slowest
