"""A hostile or careless tenant cannot hurt another at intake: every poison input is refused
with a 4xx and a JSON Pointer (on SQLite and PostgreSQL alike), and an order the database
refuses inside a group commit fails alone, never the orders written with it (issue 22)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from fabflow.api.errors import input_error, status_of
from fabflow.api.group_commit import MAX_BATCH
from fabflow.errors import FabflowError
from fabflow.order_input import MAX_INT, MAX_JSON_DEPTH, MIN_INT
from fabflow.store.repository import Store
from tests.integration.api.conftest import Receiver, rest_flow, run_until_ended

LINE = {"id": "1", "product": "nameplate", "parameters": {"text": "Ada"}}
JSON = {"Content-Type": "application/json"}


def nested(levels: int) -> Any:
    """``levels`` objects, one inside the other."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _below(pointer: str, levels: int) -> str:
    return pointer + "/a" * levels


# The reproductions of issue 22: (body, the pointer of the problem). ``data`` is the second
# level of an order and ``parameters`` the fourth, so the first level too deep is deeper in.
POISON: list[tuple[str, Any, str]] = [
    ("data 33 levels", {"data": nested(MAX_JSON_DEPTH)}, _below("/data", MAX_JSON_DEPTH - 1)),
    ("data 254 levels", {"data": nested(253)}, _below("/data", MAX_JSON_DEPTH - 1)),
    ("data 900 levels", {"data": nested(899)}, _below("/data", MAX_JSON_DEPTH - 1)),
    (
        "parameters 254 levels",
        {"lines": [{**LINE, "parameters": {"text": "Ada", **nested(252)}}]},
        _below("/lines/0/parameters", MAX_JSON_DEPTH - 3),
    ),
    ("integer 2^64", {"data": {"n": 2**64}}, "/data/n"),
    ("integer 2^63", {"data": {"n": MAX_INT + 1}}, "/data/n"),
    ("integer -2^63-1", {"data": {"n": MIN_INT - 1}}, "/data/n"),
    (
        "integer in a line",
        {"lines": [{**LINE, "parameters": {"text": "A", "w": 2**70}}]},
        "/lines/0/parameters/w",
    ),
    ("NUL in data", {"data": {"note": "a\u0000b"}}, "/data/note"),
    ("NUL in a key", {"data": {"no\u0000te": 1}}, "/data/no\u0000te"),
    ("NUL in a name", {"customer": {"name": "Ada\u0000"}}, "/customer/name"),
    ("NUL in externalId", {"externalId": "A\u0000"}, "/externalId"),
    ("NUL in flowId", {"flowId": "sh\u0000op"}, "/flowId"),
    ("NUL in a line id", {"lines": [{**LINE, "id": "\u0000"}]}, "/lines/0/id"),
    (
        "NUL in a parameter",
        {"lines": [{**LINE, "parameters": {"text": "A\u0000"}}]},
        "/lines/0/parameters/text",
    ),
    ("quantity as text", {"lines": [{**LINE, "quantity": "2"}]}, "/lines/0/quantity"),
    ("quantity true", {"lines": [{**LINE, "quantity": True}]}, "/lines/0/quantity"),
    ("quantity 2.0", {"lines": [{**LINE, "quantity": 2.0}]}, "/lines/0/quantity"),
]


@pytest.fixture
async def shop(acme: httpx.AsyncClient, globex: httpx.AsyncClient) -> None:
    """Both tenants have a flow "shop" (its receiver is never reached: no worker runs)."""
    for client in (acme, globex):
        created = await client.post("/api/flows", json=rest_flow("http://127.0.0.1:9/x"))
        assert created.status_code == 201, created.text


def _order(body: dict[str, Any]) -> dict[str, Any]:
    return {"flowId": "shop", **body}


def _pointers(answer: httpx.Response) -> list[str]:
    return [p["pointer"] for p in answer.json()["problems"]]


@pytest.mark.parametrize(("name", "body", "pointer"), POISON, ids=[p[0] for p in POISON])
async def test_a_poison_order_is_refused_with_its_pointer(
    acme: httpx.AsyncClient, shop: None, name: str, body: dict[str, Any], pointer: str
) -> None:
    answer = await acme.post("/api/orders", content=json.dumps(_order(body)), headers=JSON)
    assert answer.status_code == 422, (name, answer.text)
    assert answer.json()["code"] == "invalid_order"
    assert pointer in _pointers(answer), answer.text
    assert (await acme.get("/api/orders")).json()["orders"] == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_nan_and_infinity_in_data_are_refused_not_nulled(
    acme: httpx.AsyncClient, shop: None, constant: str
) -> None:
    raw = '{"flowId": "shop", "data": {"x": ' + constant + "}}"
    answer = await acme.post("/api/orders", content=raw, headers=JSON)
    assert answer.status_code == 422, answer.text
    assert _pointers(answer) == ["/data/x"]


async def test_the_limits_themselves_are_accepted(acme: httpx.AsyncClient, shop: None) -> None:
    body = {
        "data": {"deep": nested(MAX_JSON_DEPTH - 2), "big": MAX_INT, "small": MIN_INT},
        "lines": [{**LINE, "quantity": 2}],
    }
    answer = await acme.post("/api/orders", json=_order(body))
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["big"] == MAX_INT


async def test_an_order_at_the_limits_runs_through_a_rest_step(
    acme: httpx.AsyncClient, api_store: Store, receiver: Receiver
) -> None:
    """Accepted means it can run: the REST step encodes what intake let in (an order nested
    253 deep was accepted once and failed every attempt with "Recursion limit reached")."""
    assert (await acme.post("/api/flows", json=rest_flow(receiver.url))).status_code == 201
    data = {"deep": nested(MAX_JSON_DEPTH - 2), "big": MAX_INT, "small": MIN_INT}
    created = await acme.post("/api/orders", json=_order({"data": data}))
    assert created.status_code == 201, created.text
    done = await run_until_ended(api_store, acme, created.json()["id"], ["consume-rest-api"])
    assert done["execution"]["state"] == "succeeded", done["execution"]
    assert receiver.received[0]["data"] == data


@pytest.mark.parametrize("blanks", [["", "   ", ""], ["\t", " \n "]])
async def test_a_blank_external_id_means_none(
    acme: httpx.AsyncClient, shop: None, blanks: list[str]
) -> None:
    ids = set()
    for blank in blanks:
        answer = await acme.post("/api/orders", json=_order({"externalId": blank}))
        assert answer.status_code == 201, answer.text
        assert answer.json()["externalId"] is None
        ids.add(answer.json()["id"])
    assert len(ids) == len(blanks)  # each blank order is an order of its own


@pytest.mark.parametrize("after", [2**31 - 1, 2**31, 2**40, 2**62])
async def test_events_after_any_documented_id(
    acme: httpx.AsyncClient, shop: None, after: int
) -> None:
    order_id = (await acme.post("/api/orders", json=_order({}))).json()["id"]
    answer = await acme.get(f"/api/orders/{order_id}/events", params={"after": after})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"events": []}
    everything = await acme.get(f"/api/orders/{order_id}/events", params={"after": 0})
    assert [e["kind"] for e in everything.json()["events"]] == ["order_created"]


async def test_events_after_beyond_the_documented_range(
    acme: httpx.AsyncClient, shop: None
) -> None:
    order_id = (await acme.post("/api/orders", json=_order({}))).json()["id"]
    answer = await acme.get(f"/api/orders/{order_id}/events", params={"after": 2**62 + 1})
    assert answer.status_code == 422
    assert _pointers(answer) == ["query.after"]


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("/api/orders?q=a%00b", "query.q"),
        ("/api/orders?status=%00", "query.status"),
        ("/api/orders/ord_%00x", "path"),
        ("/api/orders/ord_%00x/events", "path"),
        ("/api/flows/sh%00op", "path"),
        ("/api/flows?cursor=%00", "query.cursor"),
    ],
)
async def test_nul_in_a_path_or_query_is_refused(
    acme: httpx.AsyncClient, shop: None, path: str, pointer: str
) -> None:
    answer = await acme.get(path)
    assert answer.status_code == 422, answer.text
    assert _pointers(answer) == [pointer]


# -- the live stream ---------------------------------------------------------------------------


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real HTTP server on 127.0.0.1 (a stream needs one); its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _first_order_event(stream: httpx.Response) -> dict[str, Any]:
    event = ""
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "order":
            found: dict[str, Any] = json.loads(line[6:])
            return found
    raise AssertionError("the stream ended")


@pytest.mark.parametrize("last_event_id", [str(2**40), str(2**62), "-1", "x", "9" * 5000])
async def test_a_stream_with_an_unknown_last_event_id_starts_from_now(
    served: str, keys: dict[str, str], shop: None, last_event_id: str
) -> None:
    headers = {"Authorization": f"Bearer {keys['acme']}"}
    async with httpx.AsyncClient(base_url=served, headers=headers, timeout=10) as client:
        old = (await client.post("/api/orders", json=_order({}))).json()["id"]
        resume = {"Last-Event-ID": last_event_id}
        async with client.stream("GET", "/api/orders/stream", headers=resume) as stream:
            assert stream.status_code == 200
            await asyncio.sleep(0.7)  # a poll or more with the id: the stream stays open
            new = (await client.post("/api/orders", json=_order({}))).json()["id"]
            async with asyncio.timeout(5):
                event = await _first_order_event(stream)
    assert event["orderId"] == new != old


async def test_a_stream_resumes_after_a_known_last_event_id(
    served: str, keys: dict[str, str], shop: None
) -> None:
    headers = {"Authorization": f"Bearer {keys['acme']}"}
    async with httpx.AsyncClient(base_url=served, headers=headers, timeout=10) as client:
        first = (await client.post("/api/orders", json=_order({}))).json()["id"]
        events = (await client.get(f"/api/orders/{first}/events")).json()["events"]
        second = (await client.post("/api/orders", json=_order({}))).json()["id"]
        resume = {"Last-Event-ID": str(events[-1]["id"])}
        async with client.stream("GET", "/api/orders/stream", headers=resume) as stream:
            async with asyncio.timeout(5):
                event = await _first_order_event(stream)
    assert event["orderId"] == second  # missed while away, sent on reconnecting


# -- one tenant's poison never fails another's orders --------------------------------------------

# What tenant A sends while tenant B sends valid orders: each reproduction of issue 22.
ATTACKS: list[dict[str, Any]] = [
    {"data": nested(253)},
    {"externalId": ""},
    {"externalId": "   "},
    {"data": {"n": 2**64}},
    {"data": {"t": "\u0000"}},
    {"customer": {"name": "\u0000"}},
]


async def test_poison_from_one_tenant_never_fails_anothers_orders(
    app: FastAPI, acme: httpx.AsyncClient, globex: httpx.AsyncClient, shop: None
) -> None:
    def attack(n: int) -> Any:
        body = json.dumps(_order(ATTACKS[n % len(ATTACKS)]))
        return acme.post("/api/orders", content=body, headers=JSON)

    def valid(n: int) -> Any:
        return globex.post("/api/orders", json=_order({"externalId": f"B-{n}", "lines": [LINE]}))

    calls = [call for n in range(80) for call in (attack(n), valid(n))]
    answers = await asyncio.gather(*calls)
    refused = [a.status_code for a in answers[0::2]]
    accepted = [a.status_code for a in answers[1::2]]
    assert accepted == [201] * 80, [a.text for a in answers[1::2] if a.status_code != 201][:3]
    assert set(refused) == {201, 422}  # blank externalIds are orders without an id
    assert max(app.state.order_batcher.group.batch_sizes) > 1  # B's orders were written together
    listed = (await globex.get("/api/orders", params={"limit": 200})).json()["orders"]
    assert len(listed) == 80


class _Recorder:
    """Around the group commit's writer: holds the first batch until ``expected`` items wait
    (so they are written together), and records the tenants of each batch it writes."""

    def __init__(self, app: FastAPI, expected: int) -> None:
        self.group = app.state.order_batcher.group
        self.write, self.expected = self.group.write_batch, expected
        self.batches: list[list[str]] = []
        self.group.write_batch = self
        self._held = threading.Event()

    @property
    def holding(self) -> bool:
        """The first batch is being written (and held)."""
        return self._held.is_set()

    def __call__(self, items: Sequence[tuple[str, dict[str, Any], str]]) -> list[Any]:
        if not self._held.is_set():
            self._held.set()
            deadline = time.monotonic() + 10
            while self.group.waiting < self.expected and time.monotonic() < deadline:
                time.sleep(0.005)
        self.batches.append([tenant for tenant, _, _ in items])
        result: list[Any] = self.write(items)
        return result


async def test_an_order_the_store_refuses_fails_alone_in_its_batch(
    app: FastAPI, api_store: Store, globex: httpx.AsyncClient, shop: None
) -> None:
    """Past intake's checks (as if a check missed): the store refuses some orders of a batch
    (before writing, or the database does: then the batch is written again order by order),
    and only those orders fail, with a 4xx error."""
    acme = api_store.ensure_tenant("acme")
    poison: list[dict[str, Any]] = [{"data": {"n": 2**64}}, {"data": nested(300)}]
    if api_store.engine.dialect.name == "postgresql":  # SQLite stores these
        poison += [{"customer": {"name": "\u0000"}}, {"externalId": "x" * 201}]
    recorder = _Recorder(app, expected=MAX_BATCH - 1)
    batcher = app.state.order_batcher
    # One order written alone and held, so that everything below waits for the same batch.
    first = asyncio.create_task(batcher.create(acme, _order({}), "shop"))
    async with asyncio.timeout(5):
        while not recorder.holding:
            await asyncio.sleep(0.005)
    bad = [batcher.create(acme, _order(poison[n % len(poison)]), "shop") for n in range(8)]
    good = [globex.post("/api/orders", json=_order({"lines": [LINE]})) for _ in range(55)]
    results = await asyncio.gather(*bad, *good, return_exceptions=True)
    assert (await first)[1] is True
    answers = results[8:]
    assert [getattr(a, "status_code", a) for a in answers] == [201] * 55
    for refused in results[:8]:
        assert isinstance(refused, (FabflowError, StatementError)), refused
        if isinstance(refused, StatementError):  # the database refused it (PostgreSQL, NUL)
            refused = input_error(refused, None)  # type: ignore[arg-type]
        assert refused is not None and status_of(refused) == 422, refused
    mixed = [b for b in recorder.batches if len(set(b)) == 2]
    assert mixed, recorder.batches  # the poison was written with globex's orders, and failed
    assert len((await globex.get("/api/orders", params={"limit": 200})).json()["orders"]) == 55


def _integrity() -> IntegrityError:
    orig = psycopg.errors.UniqueViolation('duplicate key value violates unique constraint "uq"')
    return IntegrityError("INSERT ...", {}, orig)


def _data(message: str) -> DataError:
    return DataError("INSERT ...", {}, psycopg.DataError(message))


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (_integrity(), 409, "duplicate key value"),
        (_data("PostgreSQL text fields cannot contain NUL (0x00) bytes"), 422, "NUL"),
        (_data("integer out of range"), 422, "integer out of range"),
        (
            StatementError("codec", "INSERT ...", {}, TypeError("Integer exceeds 64-bit range")),
            422,
            "64-bit",
        ),
    ],
)
def test_store_errors_caused_by_input_are_the_callers(
    error: StatementError, status: int, words: str
) -> None:
    found = input_error(error, None)  # type: ignore[arg-type]
    assert found is not None and status_of(found) == status and words in found.message


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
        StatementError("bug", "SELECT ...", {}, KeyError("x")),
    ],
)
def test_the_servers_own_store_errors_are_not_the_callers(error: StatementError) -> None:
    assert input_error(error, None) is None  # type: ignore[arg-type]
