"""consume-rest-api against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

import fabflow
from fabflow.engine.worker import Worker
from fabflow.errors import PermanentStepError, TransientStepError
from fabflow.flows.options import ConsumeRestApiOptions
from fabflow.settings import Settings
from fabflow.steps import signing
from fabflow.steps.base import StepContext
from fabflow.steps.rest import RestStep
from tests.integration.steps.one_step import OneStepShop
from tests.integration.steps.step_servers import Receiver

MakeCtx = Callable[..., StepContext]
StartReceiver = Callable[[str, int], Awaitable["Receiver"]]
LOCAL = Settings(outbound_allow=("127.0.0.1",))


@pytest.fixture
async def step() -> AsyncIterator[RestStep]:
    executor = RestStep(LOCAL)
    await executor.start()
    yield executor
    await executor.close()


def opts(uri: str, **extra: Any) -> ConsumeRestApiOptions:
    return ConsumeRestApiOptions.model_validate({"uri": uri, **extra})


async def test_success_posts_the_order_with_idempotency_key(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx, order: dict[str, Any]
) -> None:
    result = await step.execute(make_ctx(LOCAL, opts(receiver.url + "/orders")))

    [seen] = receiver.seen
    assert seen.method == "POST" and seen.path == "/orders"
    assert json.loads(seen.body) == order
    assert seen.headers["Idempotency-Key"] == "exec-1.notify.1"
    assert seen.headers["User-Agent"] == f"fabflow/{fabflow.__version__}"
    assert seen.headers["Content-Type"] == "application/json"
    assert "Fabflow-Signature" not in seen.headers  # no secret configured
    assert result.details["httpStatus"] == 200
    assert json.loads(result.details["responseExcerpt"]) == {"ok": True}
    assert 0 < result.details["latencyMs"] < 5000


async def test_keep_alive_reuses_one_connection(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    for _ in range(3):
        await step.execute(make_ctx(LOCAL, opts(receiver.url)))
    assert len({seen.peer for seen in receiver.seen}) == 1


async def test_500_is_transient_then_the_retry_succeeds(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def flaky(request: web.Request) -> web.Response:
        if len(receiver.seen) == 1:
            return web.Response(status=500, text="database is down")
        return web.json_response({"accepted": True})

    receiver.handler = flaky
    ctx = make_ctx(LOCAL, opts(receiver.url))
    with pytest.raises(TransientStepError) as caught:
        await step.execute(ctx)
    assert caught.value.error_type == "http_status"
    assert caught.value.details["httpStatus"] == 500
    assert caught.value.details["responseExcerpt"] == "database is down"

    result = await step.execute(make_ctx(LOCAL, opts(receiver.url), attempt=2))
    assert result.details["httpStatus"] == 200
    # Both attempts of the visit carry the same key, so the receiver can drop a duplicate.
    assert {s.headers["Idempotency-Key"] for s in receiver.seen} == {ctx.idempotency_key}


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
async def test_4xx_is_permanent(
    status: int, step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=status, text='{"error": "bad order"}')

    receiver.handler = refuse
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(receiver.url)))
    assert caught.value.error_type == "http_status"
    assert caught.value.details["httpStatus"] == status
    assert "bad order" in caught.value.details["responseExcerpt"]
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
async def test_retryable_statuses_are_transient_with_retry_after(
    status: int, step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Retry-After": "7"})

    receiver.handler = busy
    with pytest.raises(TransientStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(receiver.url)))
    assert caught.value.retry_after == 7
    assert caught.value.details["httpStatus"] == status


async def test_slow_response_is_cut_by_the_timeout(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="too late")

    receiver.handler = slow
    started = time.perf_counter()
    with pytest.raises(TransientStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(receiver.url), timeout_s=0.3))
    elapsed = time.perf_counter() - started
    assert caught.value.error_type == "timeout"
    assert 0.3 <= elapsed < 1.0
    assert "0.3 s" in caught.value.message


async def test_connection_refused_is_transient(
    step: RestStep, make_ctx: MakeCtx, closed_port: int
) -> None:
    port = closed_port
    with pytest.raises(TransientStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(f"http://127.0.0.1:{port}/")))
    assert caught.value.error_type == "connection"
    assert str(port) in caught.value.message


async def test_redirect_is_not_followed(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    async def redirect(request: web.Request) -> web.Response:
        if request.path == "/old":
            raise web.HTTPFound("/elsewhere")
        return web.Response(text="should never be asked")

    receiver.handler = redirect
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(receiver.url + "/old")))
    assert [s.path for s in receiver.seen] == ["/old"]
    assert caught.value.details["httpStatus"] == 302
    assert caught.value.details["location"] == "/elsewhere"
    assert "not followed" in caught.value.message


async def test_large_body_is_recorded_truncated_to_4_kib(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    big = "x" * (5 * 1024 * 1024)

    async def huge(request: web.Request) -> web.Response:
        return web.Response(text=big)

    receiver.handler = huge
    result = await step.execute(make_ctx(LOCAL, opts(receiver.url)))
    assert result.details["responseExcerpt"] == "x" * 4096
    assert result.details["responseTruncated"] is True
    # The cut connection is not reused in a broken state: the next request works.
    receiver.handler = None
    again = await step.execute(make_ctx(LOCAL, opts(receiver.url)))
    assert again.details["responseTruncated"] is False


def documented_verify() -> Callable[[str, str, bytes], bool]:
    """The ``verify`` function of the Python snippet in docs/steps.md, run as a receiver would."""
    text = (Path(__file__).parents[3] / "docs" / "steps.md").read_text()
    section = text.split("### Verifying the signature", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/steps.md", "exec"), namespace)
    verify: Callable[[str, str, bytes], bool] = namespace["verify"]
    return verify


async def test_signature_verifies_with_the_documented_recipe(
    receiver: Receiver, make_ctx: MakeCtx
) -> None:
    settings = LOCAL.with_(signing_secret="whsec_test")
    step = RestStep(settings)
    try:
        await step.execute(make_ctx(settings, opts(receiver.url)))
    finally:
        await step.close()
    [seen] = receiver.seen
    header = seen.headers["Fabflow-Signature"]
    assert signing.verify("whsec_test", header, seen.body)
    assert documented_verify()("whsec_test", header, seen.body)  # the snippet in docs/steps.md
    assert not documented_verify()("other secret", header, seen.body)
    assert not signing.verify("other secret", header, seen.body)
    assert not signing.verify("whsec_test", header, seen.body.replace(b"Ada", b"Eve"))
    assert not signing.verify("whsec_test", header, seen.body, now=time.time() + 3600)


async def test_method_and_headers_extensions(
    step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    options = opts(
        receiver.url,
        method="PUT",
        headers={"Authorization": "Bearer abc", "idempotency-key": "mine", "User-Agent": "shop"},
    )
    result = await step.execute(make_ctx(LOCAL, options))
    [seen] = receiver.seen
    assert seen.method == "PUT"
    assert seen.headers["Authorization"] == "Bearer abc"
    assert seen.headers["User-Agent"] == "shop"
    assert seen.headers["Idempotency-Key"] == "exec-1.notify.1"  # protected: not replaced
    assert result.details["ignoredHeaders"] == ["idempotency-key"]


@pytest.mark.parametrize("headers", [{"X-A": "ok\r\nX-Injected: yes"}, {"X-A\n": "v"}])
async def test_header_with_line_break_is_refused(
    headers: dict[str, str], step: RestStep, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(LOCAL, opts(receiver.url, headers=headers)))
    assert caught.value.error_type == "header_injection"
    assert receiver.seen == []


# --- outbound policy --------------------------------------------------------------------


async def test_loopback_is_refused_without_outbound_allow(
    receiver: Receiver, make_ctx: MakeCtx
) -> None:
    settings = Settings()
    step = RestStep(settings)
    try:
        with pytest.raises(PermanentStepError) as caught:
            await step.execute(make_ctx(settings, opts(receiver.url)))
    finally:
        await step.close()
    assert caught.value.error_type == "outbound_refused"
    assert "127.0.0.1" in caught.value.message and "loopback" in caught.value.message
    assert "FABFLOW_OUTBOUND_ALLOW" in caught.value.message
    assert receiver.seen == []


@pytest.mark.parametrize(
    ("host", "allow"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("localhost", "localhost"),
        ("localhost", "127.0.0.0/8,::1/128"),
    ],
)
async def test_loopback_is_allowed_by_host_or_cidr(
    host: str, allow: str, receiver: Receiver, make_ctx: MakeCtx
) -> None:
    settings = Settings.from_env({"FABFLOW_OUTBOUND_ALLOW": allow})
    step = RestStep(settings)
    try:
        result = await step.execute(make_ctx(settings, opts(f"http://{host}:{receiver.port}/")))
    finally:
        await step.close()
    assert result.details["httpStatus"] == 200
    assert len(receiver.seen) == 1


async def test_hostname_resolving_to_loopback_is_refused(
    receiver: Receiver, make_ctx: MakeCtx
) -> None:
    # Allowing the literal 127.0.0.1 does not allow every name that points at it.
    settings = Settings(outbound_allow=("example.com",))
    step = RestStep(settings)
    try:
        with pytest.raises(PermanentStepError) as caught:
            await step.execute(make_ctx(settings, opts(f"http://localhost:{receiver.port}/")))
    finally:
        await step.close()
    assert caught.value.error_type == "outbound_refused"
    assert "localhost" in caught.value.message
    assert receiver.seen == []


class StubResolver(AbstractResolver):
    """Answers every name with fixed addresses, like a DNS server under an attacker's control."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_only_allowed_addresses_of_a_name_are_connected(
    make_ctx: MakeCtx, receiver_on: StartReceiver
) -> None:
    # "shop.example" resolves to 127.0.0.2 (refused) then 127.0.0.1 (allowed). A receiver
    # listens on each; only the allowed one may see the request.
    good = await receiver_on("127.0.0.1", 0)
    bad = await receiver_on("127.0.0.2", good.port)
    settings = Settings(outbound_allow=("127.0.0.1/32",))
    resolver = StubResolver("127.0.0.2", "127.0.0.1")
    step = RestStep(settings, resolver=resolver)
    try:
        result = await step.execute(make_ctx(settings, opts(f"http://shop.example:{good.port}/")))
    finally:
        await step.close()
    assert resolver.asked == ["shop.example"]
    assert result.details["httpStatus"] == 200
    assert len(good.seen) == 1 and bad.seen == []
    assert good.seen[0].headers["Host"] == f"shop.example:{good.port}"


async def test_under_the_worker_a_slow_response_is_cut_at_the_step_timeout(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The worker cuts every attempt off at its deadline with one timer for all, so the step
    keeps none of its own there (``StepContext.deadline_enforced``): a slow receiver still
    ends the attempt at the step's timeout, recorded as timed out, not seconds later."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="too late")

    receiver.handler = slow
    settings = LOCAL.with_(data_dir=tmp_path)
    shop = OneStepShop.open(settings, "erp", "consume-rest-api", {"uri": receiver.url})
    order_id = shop.new_order()
    executor = RestStep(settings)
    await executor.start()
    worker = Worker(shop.store, {"consume-rest-api": executor})

    def execution() -> dict[str, Any]:
        return shop.execution(order_id)

    started = time.perf_counter()
    try:
        await asyncio.wait_for(worker.run(until=lambda: execution()["state"] == "failed"), 10)
    finally:
        await executor.close()
        shop.store.close()
    assert time.perf_counter() - started < 2.0, "the request ran past the step's timeout"
    [attempt] = execution()["attempts"]
    assert attempt["outcome"] == "timeout"
    assert attempt["error"]["type"] == "timeout"
    assert "'erp'" in attempt["error"]["message"] and "0.3 s" in attempt["error"]["message"]
    assert len(receiver.seen) == 1
