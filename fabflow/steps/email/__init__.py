"""send-email: render the templates, check every header, then send over SMTP (DESIGN 3.2).

``FABFLOW_SMTP_URL`` picks the transport: ``smtp://`` (plain), ``smtp+starttls://`` (STARTTLS
required), ``smtps://`` (TLS from the first byte), each with optional ``user:password@`` and
``:port``. Connections are pooled and reused across messages. With no SMTP URL the message is
written to ``<data dir>/outbox/<idempotency key>.eml`` instead, and the log says where.

``step`` is the executor; ``message`` checks and builds the message; ``smtp`` sends it and
translates the transport's errors; ``outbox`` is the fallback without SMTP.
"""

from fabflow.steps.email.message import message_id
from fabflow.steps.email.step import EmailStep

__all__ = ["EmailStep", "message_id"]
