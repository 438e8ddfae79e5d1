"""manual-confirmation: the order waits until a person confirms or rejects it.

The step renders its ``prompt`` (kept in the attempt's details, where operators read it), tells
the ``assignees`` by email with a link to the order, then waits: ``POST /api/orders/{id}/confirm``
(or ``reject``), ``fabflow orders confirm|reject`` or the order page's buttons end the wait, and
so does the step's timeout. Mail goes through send-email's machinery (its SMTP pool, or the
outbox without ``FABFLOW_SMTP_URL``), so its failures are the same step errors: a 4xx reply or
an unreachable server is transient (retried), a 5xx permanent. A failed notification fails the
step rather than waiting: nobody would know that the order waits.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fabflow.flows.options import ManualConfirmationOptions
from fabflow.steps.base import StepContext, StepExecutor, StepResult, Wait
from fabflow.steps.email import EmailStep
from fabflow.steps.email.message import Addresses, valid_addresses
from fabflow.steps.templates import has_statements, render

if TYPE_CHECKING:
    from fabflow.settings import Settings


def order_link(public_url: str, order_id: str) -> str:
    """Where a person confirms or rejects the order: its page in the web UI."""
    return f"{public_url.rstrip('/')}/orders/{quote(order_id, safe='')}"


def notice(order: dict[str, Any], prompt: str, link: str) -> tuple[str, str]:
    """The subject and body of the email that tells the assignees."""
    order_id = order["id"]
    external = f" (external id {order['externalId']})" if order.get("externalId") else ""
    subject = f"Order {order_id} waits for your confirmation"
    body = (
        f"{prompt.rstrip()}\n\n"
        f"Order {order_id}{external} waits until someone confirms or rejects it:\n"
        f"{link}\n"
    )
    return subject, body


class ConfirmationStep(StepExecutor):
    """Renders the prompt, notifies the assignees, then waits for a person."""

    type_name = "manual-confirmation"
    options_model = ManualConfirmationOptions

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._mail = EmailStep(settings)  # its pool opens on the first message

    async def close(self) -> None:
        """Close the mail connections."""
        await self._mail.close()

    async def execute(self, ctx: StepContext) -> StepResult:
        """Render, notify, wait."""
        options: ManualConfirmationOptions = ctx.options
        context = ctx.template_context
        if has_statements(options.prompt):  # template loops: off the event loop
            prompt = await asyncio.to_thread(render, options.prompt, context, "prompt")
        else:
            prompt = render(options.prompt, context, "prompt")
        details: dict[str, Any] = {"prompt": prompt}
        assignees = valid_addresses(options.assignees, context, "assignees")
        if assignees:
            link = order_link(self.settings.public_url, str(ctx.order["id"]))
            subject, body = notice(ctx.order, prompt, link)
            sent = await self._mail.send(ctx, subject, body, Addresses(assignees, [], []))
            details |= {"assignees": assignees, "link": link, **sent}
        return StepResult(details=details, wait=Wait("confirmation"))
