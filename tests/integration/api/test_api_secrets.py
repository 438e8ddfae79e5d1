"""``/api/secrets`` on a real store (SQLite and PostgreSQL), and a secret's whole life: set
through the API, read by a REST step's header template as ``secrets.MES_TOKEN``, sent to a
real receiver on 127.0.0.1, and found nowhere else: not in the database file, the logs (text
and JSON) or any API answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from fabflow.logs import JsonFormatter
from fabflow.settings import Settings
from fabflow.store.repository import Store
from fabflow.store.schema import tenant_secrets
from tests.integration.api.conftest import run_until_ended

VALUE = "mes-live-7c2f9a41e0b3"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def api_settings(db_settings: Settings) -> Settings:
    """The shared fixture's settings, with the key of tenant secrets."""
    return db_settings.with_(
        outbound_allow=("127.0.0.1",), retry_initial_delay_ms=50, secret_key=KEY
    )


class Echo:
    """A receiver that answers with what it was sent, Authorization header included (as a
    careless receiver may): whatever fabflow records of the answer must not keep it."""

    def __init__(self) -> None:
        self.url = ""
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append((dict(request.headers), body))
        echoed = {"auth": request.headers.get("Authorization"), "query": request.query_string}
        return web.json_response(echoed, status=self.status)


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    rec = Echo()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)  # the receiver's log is not fabflow's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


def mes_flow(url: str, flow_id: str = "mes") -> dict[str, Any]:
    send = {
        "stepDefinitionId": "send",
        "type": "consume-rest-api",
        "successStatus": "Sent to MES",
        "retry": 1,
        "options": {
            "uri": url + "/jobs?key={{ secrets.MES_TOKEN }}",
            "headers": {"Authorization": "Bearer {{ secrets.MES_TOKEN }}"},
            "body": {"jobId": "{{ order.id }}", "token": "{{ secrets.MES_TOKEN }}"},
        },
    }
    return {"id": flow_id, "name": "MES", "steps": [send]}


ORDER = {"customer": {"name": "Ada"}, "lines": [], "flowId": "mes"}


async def test_put_list_delete_and_answers_never_hold_the_value(acme: httpx.AsyncClient) -> None:
    created = await acme.put("/api/secrets/MES_TOKEN", json={"value": VALUE})
    assert created.status_code == 201
    assert created.json()["name"] == "MES_TOKEN" and VALUE not in created.text
    replaced = await acme.put("/api/secrets/MES_TOKEN", json={"value": VALUE + "2"})
    assert replaced.status_code == 200
    listed = (await acme.get("/api/secrets")).json()
    assert [s["name"] for s in listed["secrets"]] == ["MES_TOKEN"]
    assert set(listed["secrets"][0]) == {"name", "createdAt", "updatedAt"}
    assert (await acme.delete("/api/secrets/MES_TOKEN")).status_code == 204
    assert (await acme.delete("/api/secrets/MES_TOKEN")).status_code == 404
    assert (await acme.get("/api/secrets")).json() == {"secrets": []}


@pytest.mark.parametrize(
    ("name", "body", "pointer"),
    [
        ("MES_TOKEN", {"value": ""}, "/value"),
        ("MES_TOKEN", {"value": 42}, "/value"),
        ("MES_TOKEN", {"value": "v", "extra": 1}, "/extra"),
        ("MES_TOKEN", {}, "/value"),
        ("1BAD", {"value": "v"}, "path.name"),
        ("BAD-NAME", {"value": "v"}, "path.name"),
    ],
)
async def test_bad_input_is_refused_with_where(
    acme: httpx.AsyncClient, name: str, body: dict[str, Any], pointer: str
) -> None:
    answer = await acme.put(f"/api/secrets/{name}", json=body)
    assert answer.status_code == 422
    assert pointer in [p["pointer"] for p in answer.json()["problems"]]
    assert (await acme.get("/api/secrets")).json() == {"secrets": []}


async def test_a_tenant_cannot_see_delete_or_use_another_tenants_secret(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient, api_store: Store, echo: Echo
) -> None:
    await acme.put("/api/secrets/MES_TOKEN", json={"value": VALUE})
    assert (await globex.get("/api/secrets")).json() == {"secrets": []}
    assert (await globex.delete("/api/secrets/MES_TOKEN")).status_code == 404

    # globex's flow reads secrets.MES_TOKEN: globex has none, so its step fails.
    assert (await globex.post("/api/flows", json=mes_flow(echo.url))).status_code == 201
    order = (await globex.post("/api/orders", json=ORDER)).json()
    done = await run_until_ended(api_store, globex, order["id"])
    [attempt] = done["execution"]["attempts"]
    assert attempt["error"]["type"] == "template"
    assert "'secrets.MES_TOKEN' is undefined" in attempt["error"]["message"]
    assert echo.seen == []
    assert [s["name"] for s in (await acme.get("/api/secrets")).json()["secrets"]] == ["MES_TOKEN"]


async def test_a_secret_reaches_the_receiver_and_nothing_else(
    acme: httpx.AsyncClient,
    api_store: Store,
    api_settings: Settings,
    echo: Echo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await acme.put("/api/secrets/MES_TOKEN", json={"value": VALUE})).status_code == 201
    assert (await acme.post("/api/flows", json=mes_flow(echo.url))).status_code == 201
    ok = (await acme.post("/api/orders", json=ORDER)).json()
    done = await run_until_ended(api_store, acme, ok["id"])
    assert done["execution"]["state"] == "succeeded"
    echo.status = 400  # the receiver refuses, echoing the token in its answer
    failed = (await acme.post("/api/orders", json={**ORDER, "externalId": "F-1"})).json()
    assert (await run_until_ended(api_store, acme, failed["id"]))["execution"]["state"] == "failed"

    # It arrived, rendered, in the header, the query and the body.
    headers, body = echo.seen[0]
    assert headers["Authorization"] == f"Bearer {VALUE}"
    assert f'"token":"{VALUE}"'.encode() in body and f'"jobId":"{ok["id"]}"'.encode() in body
    # ... and the receiver's answers, which echoed it, are recorded with it redacted.
    attempt = done["execution"]["attempts"][0]
    assert "[secret]" in attempt["details"]["responseExcerpt"]

    answers = [
        await acme.get(path)
        for path in (
            f"/api/orders/{ok['id']}",
            f"/api/orders/{failed['id']}",
            f"/api/orders/{ok['id']}/events",
            f"/api/orders/{failed['id']}/events",
            "/api/orders",
            "/api/secrets",
            "/api/flows/mes",
            "/api/openapi.json",
        )
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.url
        assert VALUE not in answer.text, f"{answer.url} shows the secret"

    json_logs = JsonFormatter()
    for record in caplog.records:
        assert VALUE not in record.getMessage() and VALUE not in json_logs.format(record)
    assert VALUE not in caplog.text

    with api_store.read() as conn:
        [stored] = conn.execute(tenant_secrets.select()).all()
    assert stored.value.startswith("gAAAA") and VALUE not in stored.value
    if api_store.is_sqlite:
        for path in database_files(api_settings):
            assert VALUE.encode() not in path.read_bytes(), f"{path} holds the secret"


def database_files(settings: Settings) -> list[Path]:
    """The SQLite database and its WAL and shared-memory files."""
    main = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    files = [p for p in (main, Path(f"{main}-wal"), Path(f"{main}-shm")) if p.exists()]
    assert main in files
    return files


async def test_a_secret_stored_under_another_key_fails_the_step_clearly(
    acme: httpx.AsyncClient, api_store: Store, echo: Echo
) -> None:
    await acme.put("/api/secrets/MES_TOKEN", json={"value": VALUE})
    other = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with api_store.write() as conn:
        conn.execute(tenant_secrets.update().values(value=other))
    await acme.post("/api/flows", json=mes_flow(echo.url))
    order = (await acme.post("/api/orders", json=ORDER)).json()
    done = await run_until_ended(api_store, acme, order["id"])
    [attempt] = done["execution"]["attempts"]
    assert attempt["error"]["type"] == "secrets"
    assert "MES_TOKEN cannot be decrypted with FABFLOW_SECRET_KEY" in attempt["error"]["message"]
    assert echo.seen == []
