"""consume-rest-api with a templated body, query values and headers, against a real aiohttp
receiver on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from pydantic import ValidationError

from fabflow.errors import PermanentStepError
from fabflow.flows.options import ConsumeRestApiOptions
from fabflow.flows.validate import load_flow
from fabflow.settings import Settings
from fabflow.steps import signing
from fabflow.steps.base import StepContext
from fabflow.steps.rest import RestStep, render_json
from tests.integration.steps.step_servers import Receiver

MakeCtx = Callable[..., StepContext]
LOCAL = Settings(outbound_allow=("127.0.0.1",), signing_secret="whsec_test")
TOKEN = "mes-token-5f1c"


@pytest.fixture
async def step() -> AsyncIterator[RestStep]:
    executor = RestStep(LOCAL)
    await executor.start()
    yield executor
    await executor.close()


def opts(uri: str, **extra: Any) -> ConsumeRestApiOptions:
    return ConsumeRestApiOptions.model_validate({"uri": uri, **extra})


async def test_templated_body_and_bearer_header_arrive_rendered_and_signed(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    options = opts(
        receiver.url + "/jobs",
        headers={"Authorization": "Bearer {{ secrets.MES_TOKEN }}", "X-Shop": "fixed"},
        body={
            "jobId": "{{ order.id }}",
            "qty": "{{ order.lines[0].quantity }}",
            "lines": [{"text": "{{ order.lines[0].parameters.text | upper }}", "n": 1}],
            "priority": 2,
            "rush": False,
            "note": None,
        },
    )
    ctx = make_ctx(LOCAL, options, secrets={"MES_TOKEN": TOKEN})
    result = await step.execute(ctx)

    [seen] = receiver.seen
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["X-Shop"] == "fixed"
    assert json.loads(seen.body) == {
        "jobId": "ord_123",
        "qty": "2",
        "lines": [{"text": "ADA", "n": 1}],
        "priority": 2,
        "rush": False,
        "note": None,
    }
    # The signature covers the body as sent, not the order.
    assert signing.verify("whsec_test", seen.headers["Fabflow-Signature"], seen.body)
    assert result.details["httpStatus"] == 200


async def test_without_a_body_the_order_is_sent_with_its_update_url(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx, order: dict[str, Any]
) -> None:
    result = await step.execute(make_ctx(LOCAL, opts(receiver.url, waitForCallback=True)))
    [seen] = receiver.seen
    sent = json.loads(seen.body)
    assert sent.pop("updateUrl").endswith("/api/callbacks/" + seen.headers["Fabflow-Callback"])
    assert sent == order
    assert result.wait is not None


@pytest.mark.parametrize("value", ["line\r\nX-Injected: yes", "a\nb", "nul\0", "bell\x07"])
async def test_a_header_rendering_a_control_character_fails_permanently(
    value: str, step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    options = opts(receiver.url, headers={"X-Note": "{{ order.data.note }}"})
    ctx = make_ctx(LOCAL, options, order={"id": "o1", "data": {"note": value}})
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(ctx)
    assert caught.value.error_type == "template"
    assert caught.value.message.startswith("headers.X-Note: the rendered value holds a line break")
    assert value not in caught.value.message
    assert receiver.seen == []


@pytest.fixture
def raw_queries(receiver: Receiver) -> list[str]:
    """The raw query strings the receiver got (``Seen`` keeps the decoded path alone)."""
    queries: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        queries.append(request.rel_url.raw_query_string)
        return web.json_response({"ok": True})

    receiver.handler = answer
    return queries


async def test_templated_query_values_are_url_encoded(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx, raw_queries: list[str]
) -> None:
    options = opts(
        receiver.url + "/find?id={{ order.id }}&q={{ order.data.note }}&kind=plate%20x&flag",
    )
    note = "a&b=c d/é?#"
    await step.execute(make_ctx(LOCAL, options, order={"id": "ord 1+2", "data": {"note": note}}))
    [seen] = receiver.seen
    assert seen.path == "/find"
    [raw] = raw_queries
    # What would split or end the query is encoded ("/" and "?" may stand in a query).
    assert raw.startswith("id=ord%201%2B2&q=a%26b%3Dc%20d")
    assert raw.endswith("%23&kind=plate%20x&flag")
    assert dict(parse_qsl(raw, keep_blank_values=True)) == {
        "id": "ord 1+2",
        "q": note,
        "kind": "plate x",
        "flag": "",
    }


async def test_a_query_template_error_names_the_parameter(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    options = opts(receiver.url + "/find?id={{ order.custmer.name }}")
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(LOCAL, options))
    assert caught.value.error_type == "template"
    assert caught.value.message == "uri?id: 'order.custmer' is undefined"
    assert receiver.seen == []


async def test_a_rendered_url_to_a_blocked_address_is_refused(
    receiver: Receiver, make_ctx: MakeCtx
) -> None:
    settings = Settings()  # loopback not allowed
    step = RestStep(settings)
    options = opts(receiver.url + "/find?token={{ secrets.MES_TOKEN }}")
    try:
        with pytest.raises(PermanentStepError) as caught:
            await step.execute(make_ctx(settings, options, secrets={"MES_TOKEN": TOKEN}))
    finally:
        await step.close()
    assert caught.value.error_type == "outbound_refused"
    assert "loopback" in caught.value.message
    assert receiver.seen == []


async def test_an_error_message_never_shows_the_rendered_query(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def fail(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "no"}, status=404)

    receiver.handler = fail
    options = opts(receiver.url + "/find?token={{ secrets.MES_TOKEN }}")
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(LOCAL, options, secrets={"MES_TOKEN": TOKEN}))
    assert caught.value.message == f"{receiver.url}/find answered HTTP 404"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://{{ order.data.host }}/orders", "scheme, host or path is not allowed"),
        ("https://mes.example.com/{{ order.id }}", "scheme, host or path is not allowed"),
        ("{{ order.data.url }}", "scheme, host or path is not allowed"),
        ("https://mes.example.com/a?{{ order.id }}=1", "query parameter's name must be literal"),
        ("https://mes.example.com/a?id=1#{{ order.id }}", "#fragment is not allowed"),
        ("https://mes.example.com/a?id={{ order.id", "not closed"),
        ("ftp://mes.example.com/a?id={{ order.id }}", "absolute http or https URL"),
    ],
)
def test_validate_refuses_a_template_outside_query_values(uri: str, says: str) -> None:
    step = {
        "stepDefinitionId": "send",
        "type": "consume-rest-api",
        "successStatus": "Sent",
        "options": {"uri": uri},
    }
    result = load_flow([step])
    assert result.flow is None
    [problem] = [p for p in result.errors if p.pointer == "/0/options/uri"]
    assert says in problem.message


def test_validate_keeps_literal_uris_strict_and_header_names_literal() -> None:
    with pytest.raises(ValidationError, match="spaces are not allowed"):
        opts("https://mes.example.com/a b")
    with pytest.raises(ValidationError, match="must be literal"):
        opts("https://mes.example.com/a", headers={"X-{{ order.id }}": "v"})
    assert opts("https://mes.example.com/a?id={{ order.id }}&kind=x").uri.endswith("kind=x")


def test_a_large_body_renders_fast(order: dict[str, Any]) -> None:
    body = {
        "items": [
            {"sku": "{{ order.id }}", "name": "{{ order.customer.name }}", "n": i}
            for i in range(2000)
        ]
    }
    context = {"order": order, "error": None, "step": {}, "flow": {}, "secrets": {}}
    render_json(body, context, "body")  # compiles the two templates once
    started = time.perf_counter()
    rendered = render_json(body, context, "body")
    took = time.perf_counter() - started
    assert rendered["items"][1999] == {"sku": "ord_123", "name": "Ada Lovelace", "n": 1999}
    assert took < 0.5, f"4000 templated strings took {took:.3f} s"
