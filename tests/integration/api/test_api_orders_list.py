"""The orders list an operator can trust: sorted by any of its columns with pages that neither
skip nor repeat, a status filter in any case, a search that ignores accents, counts that follow
the filters, and an "updated" time that moves on every event (a failed attempt, a cancel)."""

from __future__ import annotations

from typing import Any

import httpx

from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, order_when, rest_flow, worker_running


def _waiting_flow(flow_id: str) -> dict[str, Any]:
    """A flow whose orders wait for a person: no status set, nothing to run."""
    check = {
        "stepDefinitionId": "check",
        "type": "manual-confirmation",
        "successStatus": "Checked",
        "options": {"prompt": "Looks right?"},
    }
    return {"id": flow_id, "name": flow_id, "steps": [check]}


async def _order(client: httpx.AsyncClient, flow_id: str, **fields: Any) -> str:
    created = await client.post("/api/orders", json={"flowId": flow_id, **fields})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _all_pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every order the list shows, two per page, following nextCursor."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        got = await client.get("/api/orders", params=query)
        assert got.status_code == 200, got.text
        seen += got.json()["orders"]
        cursor = got.json()["nextCursor"]
        if cursor is None:
            return seen


async def test_sorted_by_flow_and_status_pages_neither_skip_nor_repeat(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    for flow_id in ("b-check", "a-check"):
        assert (await acme.post("/api/flows", json=_waiting_flow(flow_id))).status_code == 201
    sent = [await _order(acme, "shop") for _ in range(3)]
    waiting = [await _order(acme, f) for f in ("b-check", "a-check", "b-check", "a-check")]
    async with worker_running(api_store):
        for order_id in sent:
            await order_when(acme, order_id, lambda o: o["status"] == "Sent")

    by_flow = await _all_pages(acme, sort="flow")
    expected = sorted((o["flowId"], o["id"]) for o in by_flow)
    assert [(o["flowId"], o["id"]) for o in by_flow] == expected
    assert [o["flowId"] for o in by_flow][:4] == ["a-check"] * 2 + ["b-check"] * 2

    by_status = await _all_pages(acme, sort="-status")
    assert [o["id"] for o in by_status] == sorted(sent, reverse=True) + sorted(
        waiting, reverse=True
    )
    newest = await _all_pages(acme)
    assert [o["id"] for o in newest] == sorted(sent + waiting, reverse=True)
    oldest = await _all_pages(acme, sort="created")
    assert [o["id"] for o in oldest] == sorted(sent + waiting)


async def test_updated_moves_on_a_failed_attempt_and_a_cancel(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    flow = rest_flow(receiver.url, retry={"maxAttempts": 5, "initialDelay": 60_000})
    assert (await acme.post("/api/flows", json=flow)).status_code == 201
    assert (await acme.post("/api/flows", json=_waiting_flow("check"))).status_code == 201
    first, last = await _order(acme, "check"), await _order(acme, "check")
    receiver.fail = 1
    async with worker_running(api_store):  # both wait for a person, then one attempt fails
        for order_id in (last, first):
            await order_when(acme, order_id, lambda o: o["execution"]["state"] == "waiting")
        failing = await _order(acme, "shop")
        failed = await order_when(
            acme,
            failing,
            lambda o: any(a["outcome"] == "error" for a in o["execution"]["attempts"]),
        )
    assert failed["updatedAt"] > failed["createdAt"]
    by_updated = await _all_pages(acme, sort="-updated")
    assert by_updated[0]["id"] == failing

    assert (await acme.post(f"/api/orders/{first}/cancel")).status_code == 200
    by_updated = await _all_pages(acme, sort="-updated")
    assert [o["id"] for o in by_updated][:2] == [first, failing]
    ascending = await _all_pages(acme, sort="updated")
    assert [o["id"] for o in ascending][1:] == [failing, first]


async def test_a_status_filter_in_any_case(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    assert (await acme.post("/api/flows", json=_waiting_flow("check"))).status_code == 201
    sent = await _order(acme, "shop")
    async with worker_running(api_store):
        await order_when(acme, sent, lambda o: o["status"] == "Sent")
    for typed in ("Sent", "sent", "SENT"):
        found = (await acme.get("/api/orders", params={"status": typed})).json()["orders"]
        assert [o["id"] for o in found] == [sent], typed
    waiting = await _order(acme, "check")  # no step has set a status: it reads "Created"
    for typed in ("Created", "created"):
        found = (await acme.get("/api/orders", params={"status": typed})).json()["orders"]
        assert [o["id"] for o in found] == [waiting], typed


async def test_search_ignores_accents_and_case(acme: httpx.AsyncClient) -> None:
    assert (await acme.post("/api/flows", json=_waiting_flow("check"))).status_code == 201
    zoe = await _order(acme, "check", customer={"name": "Zoë Müller", "email": "zm@example.com"})
    plain = await _order(acme, "check", customer={"name": "Zoe Muller"}, externalId="ÉTÉ-7")
    await _order(acme, "check", customer={"name": "Ada Lovelace"})
    for typed, expected in (
        ("zoe", {zoe, plain}),
        ("Zoë", {zoe, plain}),
        ("MÜLLER", {zoe, plain}),
        ("muller", {zoe, plain}),
        ("ete-7", {plain}),
        ("été", {plain}),
        ("zoë m", {zoe, plain}),
    ):
        found = (await acme.get("/api/orders", params={"q": typed})).json()["orders"]
        assert {o["id"] for o in found} == expected, typed


async def test_counts_follow_the_filters_but_for_their_own(acme: httpx.AsyncClient) -> None:
    for flow_id in ("one", "two"):
        assert (await acme.post("/api/flows", json=_waiting_flow(flow_id))).status_code == 201
    for flow_id in ("one", "one", "two"):
        await _order(acme, flow_id)
    everything = (await acme.get("/api/orders")).json()
    assert sum(everything["counts"].values()) == 3
    one = (await acme.get("/api/orders", params={"flowId": "one", "state": "succeeded"})).json()
    assert one["orders"] == []
    # The state buttons count what choosing each state would show within the flow filter.
    assert sum(one["counts"].values()) == 2
    assert sum(one["healthCounts"].values()) == 0  # the state filter keeps none of them


async def test_a_cursor_belongs_to_its_sort(acme: httpx.AsyncClient) -> None:
    assert (await acme.post("/api/flows", json=_waiting_flow("check"))).status_code == 201
    for _ in range(3):
        await _order(acme, "check")
    page = (await acme.get("/api/orders", params={"sort": "-updated", "limit": 1})).json()
    assert page["sort"] == "-updated" and page["nextCursor"]
    for sort in ("status", "-created"):
        wrong = await acme.get("/api/orders", params={"sort": sort, "cursor": page["nextCursor"]})
        assert wrong.status_code == 422
        assert wrong.json()["problems"][0]["pointer"] == "query.cursor"
    bad = await acme.get("/api/orders", params={"sort": "price"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["pointer"] == "query.sort"
    forged = await acme.get("/api/orders", params={"sort": "status", "cursor": "s1.!!"})
    assert forged.status_code == 422
