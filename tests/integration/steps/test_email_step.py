"""send-email against a real aiosmtpd server on 127.0.0.1 (plain, STARTTLS, SMTPS, AUTH)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller

from fabflow.engine.worker import Worker
from fabflow.errors import PermanentStepError, TransientStepError
from fabflow.flows.options import SendEmailOptions
from fabflow.settings import Settings
from fabflow.steps.base import StepContext
from fabflow.steps.email import EmailStep
from tests.integration.steps.one_step import OneStepShop
from tests.integration.steps.step_servers import USERS, MailServer

MakeCtx = Callable[..., StepContext]
# The auth_server fixture allows AUTH without TLS on purpose (loopback only); aiosmtpd warns.
NO_TLS_AUTH_WARNING = pytest.mark.filterwarnings("ignore:Requiring AUTH:UserWarning")
FROM = "Fabflow Shop <orders@shop.example.com>"


def opts(**changes: Any) -> SendEmailOptions:
    values: dict[str, Any] = {
        "recipients": ["ada@example.com"],
        "subject": "Order {{ order.id }} is {{ step.successStatus }}",
        "message": (
            "Hello {{ order.customer.name }},\nyour order {{ order.externalId }} is on its way."
        ),
    }
    values.update(changes)
    return SendEmailOptions.model_validate(values)


def parse(raw: bytes | str | None) -> EmailMessage:
    assert raw is not None
    data = raw.encode() if isinstance(raw, str) else raw
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def smtp_settings(server: MailServer, tmp_path: Path, scheme: str = "smtp", **kw: Any) -> Settings:
    userinfo = kw.pop("userinfo", "")
    return Settings(
        smtp_url=f"{scheme}://{userinfo}127.0.0.1:{server.port}",
        mail_from=FROM,
        data_dir=tmp_path / "data",
        **kw,
    )


@pytest.fixture
async def plain(mail_server: MailServer, tmp_path: Path) -> AsyncIterator[EmailStep]:
    step = EmailStep(smtp_settings(mail_server, tmp_path))
    await step.start()
    yield step
    await step.close()


async def test_delivery_with_rendered_templates_and_stable_message_id(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    ctx = make_ctx(plain.settings, opts())
    result = await plain.execute(ctx)

    [envelope] = mail_server.handler.messages
    assert envelope.mail_from == "orders@shop.example.com"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = parse(envelope.content)
    assert message["Subject"] == "Order ord_123 is notified"
    assert message["From"] == FROM
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == "<exec-1.notify.1@shop.example.com>"
    body = message.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert "Hello Ada Lovelace,\nyour order SHOP-1001 is on its way." in body
    assert result.details["messageId"] == message["Message-ID"]
    assert result.details["recipients"] == 1
    assert "queued as 42" in result.details["smtpReply"]

    # A second attempt of the same visit carries the same Message-ID (receivers deduplicate).
    await plain.execute(make_ctx(plain.settings, opts(), attempt=2))
    ids = [parse(m.content)["Message-ID"] for m in mail_server.handler.messages]
    assert ids[0] == ids[1]


async def test_connection_is_reused_across_messages(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    for n in range(3):
        await plain.execute(make_ctx(plain.settings, opts(), idempotency_key=f"k{n}"))
    assert len(mail_server.handler.messages) == 3
    assert len(mail_server.handler.sessions) == 1


async def test_reconnects_after_the_server_dropped_an_idle_connection(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    await plain.execute(make_ctx(plain.settings, opts(), idempotency_key="first"))
    mail_server.controller.stop()  # drops every connection, the pooled one too
    restarted = Controller(mail_server.handler, hostname="127.0.0.1", port=mail_server.port)
    restarted.start()
    mail_server.controller = restarted  # the fixture stops it
    await plain.execute(make_ctx(plain.settings, opts(), idempotency_key="second"))
    assert len(mail_server.handler.messages) == 2
    assert len(mail_server.handler.sessions) == 2


async def test_cc_and_bcc_receive_and_bcc_is_not_a_header(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    options = opts(
        recipients=["ada@example.com", "{{ order.customer.email }}"],
        cc=["ops@example.com"],
        bcc=["audit@example.com"],
    )
    result = await plain.execute(make_ctx(plain.settings, options))
    [envelope] = mail_server.handler.messages
    # The rendered address equals the literal one: it is sent to once.
    assert sorted(envelope.rcpt_tos) == ["ada@example.com", "audit@example.com", "ops@example.com"]
    message = parse(envelope.content)
    assert message["Cc"] == "ops@example.com"
    assert "Bcc" not in message
    assert b"audit@example.com" not in (envelope.original_content or b"")
    assert result.details["recipients"] == 3


async def test_attaches_existing_production_files_and_notes_missing_ones(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx, order: dict[str, Any]
) -> None:
    ctx = make_ctx(plain.settings, opts(attach_production_files=True))
    source = ctx.files.scratch_dir() / "plate.stl"
    source.write_bytes(b"solid\x00" * 100)
    ctx.files.put("orders/ord_123/plate.stl", source)
    stored = (
        {"key": "orders/ord_123/plate.stl", "name": "plate.stl", "contentType": "model/stl"},
        {"key": "orders/ord_123/gone.obj", "name": "gone.obj", "contentType": "model/obj"},
    )
    result = await plain.execute(make_ctx(plain.settings, ctx.options, stored_files=stored))
    [envelope] = mail_server.handler.messages
    attachments = list(parse(envelope.content).iter_attachments())
    assert [a.get_filename() for a in attachments] == ["plate.stl"]
    assert attachments[0].get_content_type() == "model/stl"
    assert attachments[0].get_payload(decode=True) == b"solid\x00" * 100
    assert result.details["missingAttachments"] == ["gone.obj"]


async def test_4xx_is_transient(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    mail_server.handler.data_reply = "451 4.3.0 mailbox busy, try later"
    with pytest.raises(TransientStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts()))
    assert caught.value.error_type == "smtp"
    assert caught.value.details == {"smtpCode": 451, "smtpReply": "4.3.0 mailbox busy, try later"}
    # The retry goes through once the server accepts again.
    mail_server.handler.data_reply = None
    await plain.execute(make_ctx(plain.settings, opts(), attempt=2))
    assert len(mail_server.handler.messages) == 1


@pytest.mark.parametrize("where", ["data", "rcpt"])
async def test_5xx_is_permanent(
    where: str, plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    setattr(mail_server.handler, f"{where}_reply", "550 5.1.1 no such user")
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts()))
    assert caught.value.error_type == "smtp"
    assert caught.value.details["smtpCode"] == 550
    assert mail_server.handler.messages == []


async def test_connection_refused_is_transient(
    tmp_path: Path, make_ctx: MakeCtx, closed_port: int
) -> None:
    settings = Settings(smtp_url=f"smtp://127.0.0.1:{closed_port}", data_dir=tmp_path)
    step = EmailStep(settings)
    with pytest.raises(TransientStepError) as caught:
        await step.execute(make_ctx(settings, opts()))
    assert caught.value.error_type == "connection"
    await step.close()


async def test_unknown_template_variable_is_a_template_error(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts(message="Hi {{ order.custmer.name }}")))
    assert caught.value.error_type == "template"
    assert "order.custmer" in caught.value.message
    assert mail_server.handler.messages == []


async def test_sandbox_refuses_code(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    evil = "{{ order.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts(message=evil)))
    assert caught.value.error_type == "template"
    assert mail_server.handler.messages == []


async def test_error_context_is_available_on_an_error_path(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    error = {"stepDefinitionId": "post", "type": "http_status", "message": "HTTP 500"}
    options = opts(subject="Failed: {{ error.stepDefinitionId }}", message="{{ error.message }}")
    await plain.execute(make_ctx(plain.settings, options, error=error))
    message = parse(mail_server.handler.messages[0].content)
    assert message["Subject"] == "Failed: post"
    assert message.get_content().strip() == "HTTP 500"


@pytest.mark.parametrize(
    "subject", ["{{ order.data.note }}", "{{ order.data.evil }}", "Order\r\nBcc: x@example.com"]
)
async def test_header_injection_in_subject_is_refused_before_sending(
    subject: str,
    plain: EmailStep,
    mail_server: MailServer,
    make_ctx: MakeCtx,
    order: dict[str, Any],
) -> None:
    order["data"] = {"note": "Hi\nBcc: victim@example.com", "evil": "Hi\rX-Spam: yes"}
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts(subject=subject), order=order))
    assert caught.value.error_type == "header_injection"
    assert mail_server.handler.messages == []


async def test_line_break_in_a_rendered_address_is_refused(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx, order: dict[str, Any]
) -> None:
    order["customer"]["email"] = "ada@example.com\nBcc: victim@example.com"
    options = opts(recipients=["{{ order.customer.email }}"])
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, options, order=order))
    assert caught.value.error_type == "header_injection"
    assert mail_server.handler.messages == []


@pytest.mark.parametrize("field", ["recipients", "cc", "bcc"])
async def test_invalid_address_is_refused_before_sending(
    field: str, plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx, order: dict[str, Any]
) -> None:
    order["data"] = {"bad": "not-an-address"}
    options = opts(**{field: ["ok@example.com", "{{ order.data.bad }}"]})
    with pytest.raises(PermanentStepError) as caught:
        await plain.execute(make_ctx(plain.settings, options, order=order))
    assert caught.value.error_type == "recipient"
    assert "not-an-address" in caught.value.message
    assert mail_server.handler.messages == []


async def test_starttls_with_auth(
    starttls_server: MailServer, ca_file: str, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    [(user, password)] = USERS.items()
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    settings = smtp_settings(
        starttls_server, tmp_path, "smtp+starttls", userinfo=userinfo, smtp_ca_file=ca_file
    )
    step = EmailStep(settings)
    try:
        await step.execute(make_ctx(settings, opts()))
    finally:
        await step.close()
    [envelope] = starttls_server.handler.messages
    assert parse(envelope.content)["Subject"] == "Order ord_123 is notified"


async def test_starttls_refuses_an_unknown_certificate(
    starttls_server: MailServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    settings = smtp_settings(starttls_server, tmp_path, "smtp+starttls")  # no test CA given
    step = EmailStep(settings)
    try:
        with pytest.raises(PermanentStepError) as caught:
            await step.execute(make_ctx(settings, opts()))
    finally:
        await step.close()
    assert caught.value.error_type == "tls"
    assert starttls_server.handler.messages == []


async def test_smtps(
    smtps_server: MailServer, ca_file: str, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    settings = smtp_settings(smtps_server, tmp_path, "smtps", smtp_ca_file=ca_file)
    step = EmailStep(settings)
    try:
        result = await step.execute(make_ctx(settings, opts()))
    finally:
        await step.close()
    assert len(smtps_server.handler.messages) == 1
    assert result.details["recipients"] == 1


@NO_TLS_AUTH_WARNING
async def test_auth_plain_connection(
    auth_server: MailServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    [(user, password)] = USERS.items()
    good = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    settings = smtp_settings(auth_server, tmp_path, userinfo=good)
    step = EmailStep(settings)
    try:
        await step.execute(make_ctx(settings, opts()))
    finally:
        await step.close()
    assert len(auth_server.handler.messages) == 1


@NO_TLS_AUTH_WARNING
async def test_wrong_password_is_permanent(
    auth_server: MailServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    settings = smtp_settings(auth_server, tmp_path, userinfo="fab%20user:wrong@")
    step = EmailStep(settings)
    try:
        with pytest.raises(PermanentStepError) as caught:
            await step.execute(make_ctx(settings, opts()))
    finally:
        await step.close()
    assert caught.value.details["smtpCode"] == 535
    assert auth_server.handler.messages == []


async def test_outbox_fallback_writes_a_parseable_eml(
    tmp_path: Path, make_ctx: MakeCtx, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", mail_from=FROM)
    step = EmailStep(settings)
    await step.start()
    caplog.set_level("INFO", logger="fabflow.steps.email")
    result = await step.execute(make_ctx(settings, opts(bcc=["audit@example.com"])))
    path = Path(result.details["outbox"])
    assert path == settings.outbox_dir / "exec-1.notify.1.eml"
    message = parse(path.read_bytes())
    assert message["Subject"] == "Order ord_123 is notified"
    assert message["Message-ID"] == "<exec-1.notify.1@shop.example.com>"
    assert str(path) in caplog.text
    assert [p.name for p in settings.outbox_dir.iterdir()] == [path.name]  # no temp file left


async def test_non_ascii_subject_body_and_sender_round_trip(
    mail_server: MailServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    settings = smtp_settings(mail_server, tmp_path).with_(mail_from="Zoë's Shöp <shop@example.com>")
    step = EmailStep(settings)
    long_subject = "Bestellung {{ order.data.note }} " + "ø" * 90
    try:
        await step.execute(make_ctx(settings, opts(subject=long_subject, message="Grüße ✓")))
    finally:
        await step.close()
    message = parse(mail_server.handler.messages[0].content)
    assert message["Subject"] == "Bestellung ünïcødé " + "ø" * 90
    assert message["From"] == "Zoë's Shöp <shop@example.com>"
    assert message.get_content().strip() == "Grüße ✓"


async def test_slow_server_is_cut_by_the_timeout_and_its_connection_dropped(
    plain: EmailStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    mail_server.handler.data_delay = 2.0
    started = time.perf_counter()
    with pytest.raises(TransientStepError) as caught:
        await plain.execute(make_ctx(plain.settings, opts(), timeout_s=0.3))
    assert caught.value.error_type == "timeout"
    assert time.perf_counter() - started < 1.0
    # The half-finished connection is not reused: the next send opens a fresh one and works.
    mail_server.handler.data_delay = 0.0
    await plain.execute(make_ctx(plain.settings, opts(), idempotency_key="next"))
    assert len(mail_server.handler.sessions) == 2


async def test_under_the_worker_a_slow_server_is_cut_at_the_step_timeout(
    mail_server: MailServer, tmp_path: Path
) -> None:
    """Under the worker (``StepContext.deadline_enforced``) the step keeps no timer of its
    own: the worker's cancellation at the deadline ends the attempt as timed out, and the
    connection it cut mid-message is dropped, not handed to the next message."""
    settings = smtp_settings(mail_server, tmp_path, poll_seconds=0.05)
    shop = OneStepShop.open(settings, "mail", "send-email", opts().model_dump(by_alias=True))
    executor = EmailStep(settings)
    await executor.start()
    worker = Worker(shop.store, {"send-email": executor})
    execution = shop.execution

    try:
        mail_server.handler.data_delay = 3.0
        slow = shop.new_order()
        started = time.perf_counter()
        await asyncio.wait_for(worker.run(until=lambda: execution(slow)["state"] == "failed"), 10)
        assert time.perf_counter() - started < 2.0, "the message ran past the step's timeout"
        [attempt] = execution(slow)["attempts"]
        assert attempt["outcome"] == "timeout"
        mail_server.handler.data_delay = 0.0
        fine = shop.new_order()
        worker = Worker(shop.store, {"send-email": executor})
        ended = ("succeeded", "failed")
        await asyncio.wait_for(worker.run(until=lambda: execution(fine)["state"] in ended), 10)
        assert execution(fine)["state"] == "succeeded"
        assert len(mail_server.handler.sessions) == 2  # a fresh connection for the second
    finally:
        await executor.close()
        shop.store.close()
