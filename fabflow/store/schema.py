"""The database schema (SQLAlchemy Core tables), the same on SQLite and PostgreSQL.

Times are UNIX seconds (float): lease arithmetic stays simple and identical on both dialects.
Persisted enum values are lowercase strings that never change (see ``fabflow.lifecycle.states``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSON on SQLite, JSONB on PostgreSQL (indexable, compact).
Json = JSON().with_variant(JSONB(), "postgresql")
# Ids of the tables that grow with every step run: 64 bits on PostgreSQL (a 32-bit serial runs
# out after 2.1 billion rows, weeks at full speed); SQLite's rowid is 64 bits already, and only
# INTEGER PRIMARY KEY is its rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("label", String(100), nullable=False, default=""),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

flows = Table(
    "flows",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("flow_id", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("current_version", Integer, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "flow_id", name="uq_flows_tenant_flow"),
)

flow_versions = Table(
    "flow_versions",
    metadata,
    Column("flow_pk", Integer, ForeignKey("flows.pk"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", Json, nullable=False),  # the spec's list form
    Column("created_at", Float, nullable=False),
    # The flow's deadline, in ms from an order's creation (migration 0003): past it, an order
    # whose execution has not ended is unhealthy.
    Column("deadline_ms", Float),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),  # time-ordered: cursor pagination by id
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("external_id", String(200)),
    Column("flow_pk", Integer, ForeignKey("flows.pk"), nullable=False),
    Column("status", String(200)),
    Column("customer", Json, nullable=False),
    Column("lines", Json, nullable=False),
    Column("data", Json, nullable=False),
    Column("files", Json, nullable=False),
    Column("step_data", Json),  # what steps reported back, by step id (a callback's data)
    Column("search", Text, nullable=False, default=""),  # folded id/externalId/customer: search.py
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "external_id", name="uq_orders_tenant_external"),
    Index("ix_orders_tenant_id_id", "tenant_id", "id"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id"), nullable=False, unique=True),
    Column("tenant_id", String(40), nullable=False),
    Column("flow_pk", Integer, nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("current_step", String(200)),
    Column("had_error", Boolean, nullable=False, default=False),
    Column("visits", Integer, nullable=False, default=0),  # step visits so far: idempotency keys
    Column("last_error", Json),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("ended_at", Float),
    # Each step's latest result by step id (migration 0004): what later steps read as steps.ID.
    Column("outputs", Json),
    Index("ix_executions_tenant_state", "tenant_id", "state"),
)

_QUEUED = text("state = 'queued'")
_RUNNING = text("state = 'running'")
_WAITING = text("state = 'waiting'")

attempts = Table(
    "attempts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("execution_id", String(40), ForeignKey("executions.id"), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("step_type", String(100), nullable=False),
    Column("visit", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # queued running success error timeout cancelled
    Column("run_after", Float, nullable=False),
    Column("lease_until", Float),
    Column("lease_version", Integer, nullable=False, default=0),  # the fencing token
    Column("claims", Integer, nullable=False, default=0),
    Column("worker_id", String(80)),
    Column("idempotency_key", String(120), nullable=False),
    Column("error_context", Json),  # the error handed to a step on an error path
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("duration_ms", Float),
    Column("error_type", String(60)),
    Column("error_message", Text),
    Column("details", Json),
    # A wait (migration 0003): its deadline, what ends it ("callback" or "confirmation"), the
    # sha256 of its callback token, and how it was resolved (outcome, by whom, when).
    Column("wait_until", Float),
    Column("wait_kind", String(20)),
    Column("callback_token", String(64), unique=True),
    Column("resolution", Json),
    # Partial: only open attempts (see migrations 0002 and 0003).
    Index("ix_attempts_queued", "run_after", sqlite_where=_QUEUED, postgresql_where=_QUEUED),
    Index("ix_attempts_running", "lease_until", sqlite_where=_RUNNING, postgresql_where=_RUNNING),
    Index("ix_attempts_execution", "execution_id", "id"),
    Index("ix_attempts_waiting", "wait_until", sqlite_where=_WAITING, postgresql_where=_WAITING),
)

# The conditions of the partial indexes, as literals: a query must say them word for word
# (a bound parameter in their place keeps the planner from using the index).
ATTEMPT_QUEUED = attempts.c.state == literal_column("'queued'")
ATTEMPT_RUNNING = attempts.c.state == literal_column("'running'")
ATTEMPT_WAITING = attempts.c.state == literal_column("'waiting'")

status_history = Table(
    "status_history",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("order_id", String(40), nullable=False, index=True),
    Column("status", String(200), nullable=False),
    Column("step_id", String(200)),
    Column("at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("data", Json, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_events_order", "order_id", "id"),
    Index("ix_events_tenant", "tenant_id", "id"),
)

# Secrets every process of one installation shares, made once (the key of callback tokens).
install_secrets = Table(
    "install_secrets",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(100), nullable=False),
)

# Values templates read as secrets.NAME, encrypted with FABFLOW_SECRET_KEY (migration 0004).
tenant_secrets = Table(
    "tenant_secrets",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("hostname", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # running draining stopped
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

# -- status webhooks (migration 0005) ------------------------------------------------------

# A tenant's endpoints that hear about its orders (``fabflow.store.webhooks``).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Json, nullable=False),  # the webhook event types it wants
    Column("description", Text, nullable=False, default=""),
    Column("secret", String(100), nullable=False),  # signs each delivery (Fabflow-Signature)
    Column("enabled", Boolean, nullable=False, default=True),
    Column("after_event", Integer, nullable=False),  # it hears of events with a higher id
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_webhooks_tenant", "tenant_id", "id"),
)

_DELIVERY_PENDING = text("state = 'pending'")

# The outbox: one row per (webhook, event), sent at least once, in order per order.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("webhook_id", String(40), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("event_id", String(80), nullable=False),  # the body's id, the same on every send
    Column("type", String(40), nullable=False),
    Column("payload", Json, nullable=False),
    Column("state", String(20), nullable=False),  # pending succeeded failed
    Column("attempts", Integer, nullable=False, default=0),  # sends started: the fencing token
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),  # set while a sender holds it
    Column("retry_until", Float, nullable=False),  # given up after this
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("status_code", Integer),  # of the last send
    Column("latency_ms", Float),
    Column("response", Text),  # the last answer's first 1 KiB
    Column("error", Text),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=_DELIVERY_PENDING,
        postgresql_where=_DELIVERY_PENDING,
    ),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    Index("ix_webhook_deliveries_order", "webhook_id", "order_id", "id"),
)

# Where the webhook dispatcher is in the events table (one row, "events").
webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A tenant's products made from OpenSCAD models (``fabflow.store.products``): one row per
# version, the newest is current; orders pin the version they were accepted with. The model's
# files are a zip archive in the file store under ``archive_key``.
product_versions = Table(
    "product_versions",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("main", String(200), nullable=False),  # the main .scad file's path in the archive
    Column("source", Text, nullable=False),  # the main file's text, read again for intake checks
    Column("parameters", Json, nullable=False),  # the parameters' JSON Schema
    Column("parts", Json, nullable=False),  # the part names each line makes
    Column("files", Json, nullable=False),  # [{"path", "bytes"}] of the archive
    Column("archive_key", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per process that checks the store takes writes (``/api/health``): a real write, so a
# read-only database, a full disk or a server in recovery shows up as unhealthy.
health_probes = Table(
    "health_probes",
    metadata,
    Column("node", String(200), primary_key=True),
    Column("checked_at", Float, nullable=False),
)


# Signed-in browsers of the web UI, shared by every API node (a restart keeps them). ``id`` is
# the sha256 of the session cookie; ``sealed_key`` the session's API key, encrypted under a key
# derived from the cookie, so this table alone opens no session and reveals no key.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Index("ix_web_sessions_seen", "seen_at"),
)


# What operators did outside any one order, for the record: flows saved and archived, API keys
# created and revoked, bulk actions. ``by`` names the actor as order events do.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("data", Json, nullable=False),
    Column("by", String(200)),
    Column("at", Float, nullable=False),
    Index("ix_audit_events_tenant", "tenant_id", "id"),
)
