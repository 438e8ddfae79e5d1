"""Orders' health from the store: the lifecycle's rules (``fabflow.lifecycle.health``) fed with
rows for one order, and the same rules in SQL for the list's filter and the counts.

The SQL reads the open attempts through their partial indexes (queued, running, waiting) and
the executions that have not ended through the tenant-and-state index: never the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select, union_all

from fabflow.lifecycle.health import order_health
from fabflow.lifecycle.states import ENDED_EXECUTION_STATES, ExecutionState, values
from fabflow.store.repository import FlowRules
from fabflow.store.schema import (
    ATTEMPT_QUEUED,
    ATTEMPT_RUNNING,
    ATTEMPT_WAITING,
    attempts,
    executions,
    flow_versions,
)

_OPEN = values(frozenset(ExecutionState) - ENDED_EXECUTION_STATES)


def health_json(
    execution: Mapping[str, Any],
    attempt_rows: Sequence[Mapping[str, Any]],
    created_at: float,
    rules: FlowRules,
    now: float,
) -> dict[str, Any]:
    """The order resource's ``health`` of one execution and its attempts (oldest first)."""
    step = attempt_rows[-1]["step_id"] if attempt_rows else None
    health = order_health(
        execution["state"],
        attempt_rows,
        max_attempts=rules.max_attempts.get(step, 1) if step is not None else 1,
        created_at=created_at,
        deadline_ms=rules.deadline_ms,
        now=now,
    )
    return health.as_json()


def unhealthy(now: float, tenant_id: str) -> ColumnElement[bool]:
    """``executions`` rows that ``order_health`` calls unhealthy at ``now``."""
    in_tenant = attempts.c.tenant_id == tenant_id
    # One open attempt per execution at most: an open retry is its newest attempt.
    troubled = union_all(
        select(attempts.c.execution_id).where(ATTEMPT_QUEUED, in_tenant, attempts.c.attempt > 1),
        select(attempts.c.execution_id).where(ATTEMPT_RUNNING, in_tenant, attempts.c.attempt > 1),
        select(attempts.c.execution_id).where(
            ATTEMPT_WAITING, in_tenant, attempts.c.wait_until <= now
        ),
    )
    # The order and its execution are created in the same instant: the execution's time is
    # the order's, and saves a join.
    past_deadline = exists().where(
        flow_versions.c.flow_pk == executions.c.flow_pk,
        flow_versions.c.version == executions.c.flow_version,
        executions.c.created_at + flow_versions.c.deadline_ms / 1000.0 <= now,
    )
    return and_(
        executions.c.state.in_(_OPEN),
        or_(executions.c.id.in_(troubled), past_deadline),
    )


def unhealthy_count(conn: Connection, tenant_id: str, now: float) -> int:
    """How many of the tenant's orders are unhealthy at ``now``."""
    query = (
        select(func.count())
        .select_from(executions)
        .where(executions.c.tenant_id == tenant_id, unhealthy(now, tenant_id))
    )
    return int(conn.execute(query).scalar_one())
