"""manual-confirmation's executor against a real aiosmtpd server on 127.0.0.1: the prompt is
rendered and kept, the assignees are told with a link to the order, and the step waits."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from fabflow.errors import PermanentStepError, StepError, TransientStepError
from fabflow.flows.options import ManualConfirmationOptions
from fabflow.settings import Settings
from fabflow.steps.base import StepContext, Wait
from fabflow.steps.confirmation import ConfirmationStep
from tests.integration.steps.step_servers import MailServer

MakeCtx = Callable[..., StepContext]
PUBLIC = "https://fab.example.com/"
PROMPT = "Is {{ order.lines[0].parameters.text }} fine for {{ order.customer.name }}?"


def opts(**changes: Any) -> ManualConfirmationOptions:
    values: dict[str, Any] = {"prompt": PROMPT, "assignees": ["ops@example.com"]}
    values.update(changes)
    return ManualConfirmationOptions.model_validate(values)


def parse(raw: bytes | str | None) -> EmailMessage:
    assert raw is not None
    data = raw.encode() if isinstance(raw, str) else raw
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
async def step(mail_server: MailServer, tmp_path: Path) -> AsyncIterator[ConfirmationStep]:
    settings = Settings(
        smtp_url=f"smtp://127.0.0.1:{mail_server.port}",
        mail_from="Fab <orders@shop.example.com>",
        public_url=PUBLIC,
        data_dir=tmp_path / "data",
    )
    executor = ConfirmationStep(settings)
    await executor.start()
    yield executor
    await executor.close()


async def test_the_assignees_get_the_prompt_and_a_link_then_the_step_waits(
    step: ConfirmationStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    assignees = ["ops@example.com", "{{ order.customer.email }}"]
    result = await step.execute(make_ctx(step.settings, opts(assignees=assignees)))

    assert result.wait == Wait("confirmation")
    link = "https://fab.example.com/orders/ord_123"
    assert result.details["prompt"] == "Is Ada fine for Ada Lovelace?"
    assert result.details["assignees"] == ["ops@example.com", "ada@example.com"]
    assert result.details["link"] == link
    [envelope] = mail_server.handler.messages
    assert envelope.rcpt_tos == ["ops@example.com", "ada@example.com"]
    message = parse(envelope.content)
    assert message["Subject"] == "Order ord_123 waits for your confirmation"
    assert message["Message-ID"] == result.details["messageId"]
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Is Ada fine for Ada Lovelace?\n")
    assert link in body and "SHOP-1001" in body


async def test_without_assignees_nobody_is_mailed_and_the_step_still_waits(
    step: ConfirmationStep, mail_server: MailServer, make_ctx: MakeCtx
) -> None:
    result = await step.execute(make_ctx(step.settings, opts(assignees=[])))
    assert result.wait == Wait("confirmation")
    assert result.details == {"prompt": "Is Ada fine for Ada Lovelace?"}
    assert mail_server.handler.messages == []


async def test_without_smtp_the_notice_goes_to_the_outbox(
    tmp_path: Path, make_ctx: MakeCtx
) -> None:
    settings = Settings(data_dir=tmp_path / "data", public_url=PUBLIC)
    executor = ConfirmationStep(settings)
    result = await executor.execute(make_ctx(settings, opts()))
    await executor.close()
    assert result.wait == Wait("confirmation")
    path = Path(result.details["outbox"])
    assert path == settings.outbox_dir / "exec-1.notify.1.eml"
    assert "https://fab.example.com/orders/ord_123" in parse(path.read_bytes()).get_content()


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 try later", TransientStepError), ("550 5.1.1 no such user", PermanentStepError)],
)
async def test_a_notice_the_server_refuses_is_a_step_error(
    step: ConfirmationStep,
    mail_server: MailServer,
    make_ctx: MakeCtx,
    reply: str,
    error: type[StepError],
) -> None:
    mail_server.handler.data_reply = reply
    with pytest.raises(error) as caught:
        await step.execute(make_ctx(step.settings, opts()))
    assert caught.value.error_type == "smtp"


async def test_an_unreachable_server_is_transient(
    tmp_path: Path, make_ctx: MakeCtx, closed_port: int
) -> None:
    settings = Settings(smtp_url=f"smtp://127.0.0.1:{closed_port}", data_dir=tmp_path)
    executor = ConfirmationStep(settings)
    with pytest.raises(TransientStepError) as caught:
        await executor.execute(make_ctx(settings, opts()))
    await executor.close()
    assert caught.value.error_type == "connection"


@pytest.mark.parametrize(
    ("changes", "error_type"),
    [
        ({"prompt": "Is {{ order.custmer.name }} right?"}, "template"),
        ({"assignees": ["{{ order.data.note }}"]}, "recipient"),
    ],
)
async def test_a_prompt_or_assignee_that_cannot_render_fails_before_sending(
    step: ConfirmationStep,
    mail_server: MailServer,
    make_ctx: MakeCtx,
    changes: dict[str, Any],
    error_type: str,
) -> None:
    with pytest.raises(PermanentStepError) as caught:
        await step.execute(make_ctx(step.settings, opts(**changes)))
    assert caught.value.error_type == error_type
    assert mail_server.handler.messages == []
