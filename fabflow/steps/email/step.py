"""The send-email executor: render, check, compose, then send over SMTP or write to the outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from email.message import Message
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any

from fabflow.flows.options import SendEmailOptions
from fabflow.steps.base import StepContext, StepExecutor, StepResult, within_deadline
from fabflow.steps.email.message import (
    Addresses,
    attachments,
    checked_subject,
    compose,
    message_id,
    valid_addresses,
)
from fabflow.steps.email.outbox import write_outbox
from fabflow.steps.email.smtp import SmtpPool, parse_smtp_url, smtp_error, tls_context
from fabflow.steps.templates import has_statements, render

if TYPE_CHECKING:
    from fabflow.settings import Settings

log = logging.getLogger(__name__)


class EmailStep(StepExecutor):
    """Renders subject and message, then sends them (or writes them to the outbox)."""

    type_name = "send-email"
    options_model = SendEmailOptions

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        name, address = parseaddr(settings.mail_from)
        self._sender = address or settings.mail_from
        self._from_header = formataddr((name, self._sender), charset="utf-8")
        self._pool: SmtpPool | None = None

    async def start(self) -> None:
        """Prepare the connection pool (connections open on first use)."""
        if self.target is None:
            log.info("FABFLOW_SMTP_URL is not set: emails go to %s", self.settings.outbox_dir)
        elif self._pool is None:
            context = tls_context(self.settings.smtp_ca_file)
            size = max(1, min(self.settings.concurrency, 16))
            self._pool = SmtpPool(self.target, context, size)

    async def close(self) -> None:
        """Close pooled connections."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def execute(self, ctx: StepContext) -> StepResult:
        """Build the message, refusing anything unsafe before sending, then deliver it."""
        options: SendEmailOptions = ctx.options
        context = ctx.template_context
        if has_statements(options.subject, options.message):  # loops: off the event loop
            subject, body = await asyncio.to_thread(_texts, options, context)
        else:
            subject, body = _texts(options, context)
        addresses = Addresses(
            valid_addresses(options.recipients, context, "recipients"),
            valid_addresses(options.cc, context, "cc"),
            valid_addresses(options.bcc, context, "bcc"),
        )
        parts: list[Message] = []
        missing: list[str] = []
        if options.attach_production_files:
            parts, missing = await attachments(list(ctx.stored_files), ctx.files)
        details = await self.send(ctx, subject, body, addresses, parts)
        if missing:
            details["missingAttachments"] = missing
        return StepResult(details=details)

    async def send(
        self,
        ctx: StepContext,
        subject: str,
        body: str,
        addresses: Addresses,
        parts: Sequence[Message] = (),
    ) -> dict[str, Any]:
        """Deliver one message of ``ctx``'s step visit (its ``Message-ID`` derives from the
        visit's idempotency key) over SMTP or to the outbox; what it did, as attempt details.
        Other step types that tell people something (manual-confirmation) send through this."""
        mid = message_id(ctx.idempotency_key, self._sender)
        data = compose(self._from_header, mid, checked_subject(subject), body, addresses, [*parts])
        details = await self._deliver(ctx, data, addresses.envelope)
        details["messageId"] = mid
        return details

    async def _deliver(
        self, ctx: StepContext, data: bytes, recipients: list[str]
    ) -> dict[str, Any]:
        if self._pool is None and self.target is not None:
            await self.start()
        if self._pool is None:
            outbox = self.settings.outbox_dir
            path = await asyncio.to_thread(write_outbox, outbox, ctx.idempotency_key, data)
            log.info("step %s: no SMTP configured, wrote the email to %s", ctx.step_id, path)
            return {"outbox": str(path)}
        sending = self._pool.send(data, self._sender, recipients)
        try:  # cut off mid-message, the pool closes the connection
            refused, reply = await within_deadline(ctx, sending)
        except Exception as exc:  # CancelledError passes: the worker is stopping us
            error = smtp_error(exc, ctx.timeout_s)
            if error is None:
                raise
            raise error from exc
        details: dict[str, Any] = {"smtpReply": reply, "recipients": len(recipients) - len(refused)}
        if refused:
            details["refusedRecipients"] = {a: str(r) for a, r in refused.items()}
        return details


def _texts(options: SendEmailOptions, context: dict[str, Any]) -> tuple[str, str]:
    """The rendered subject (checked) and message."""
    subject = checked_subject(render(options.subject, context, "subject"))
    return subject, render(options.message, context, "message")
