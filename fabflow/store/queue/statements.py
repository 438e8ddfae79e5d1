"""The queue's statements: SQLAlchemy Core constructs built once (their compiled form is
cached), each a guarded update where it changes a state.

A claim bumps the attempt's ``lease_version`` (the fencing token); finishing, renewing or
releasing requires the version the worker holds and the state the lifecycle allows the move
from, so a worker that lost its lease can never write the attempt.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    ColumnElement,
    String,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from fabflow.lifecycle.states import (
    AttemptState,
    ExecutionState,
    attempt_sources,
    execution_sources,
)
from fabflow.store.schema import (
    ATTEMPT_QUEUED,
    ATTEMPT_RUNNING,
    ATTEMPT_WAITING,
    attempts,
    events,
    executions,
    orders,
    status_history,
)


def attempt_guard(*targets: AttemptState, from_waiting: bool = False) -> ColumnElement[bool]:
    """``state = <the state the lifecycle lets every target follow>``: running, or waiting."""
    source = AttemptState.WAITING if from_waiting else AttemptState.RUNNING
    assert all(source in attempt_sources(t) for t in targets), f"{source} -> {targets}"
    return attempts.c.state == literal(source.value)


def execution_guard(target: ExecutionState, source: ExecutionState) -> ColumnElement[bool]:
    """``state = source``, a move the lifecycle allows to ``target``."""
    assert source in execution_sources(target), f"{source} -> {target} is not a lifecycle move"
    return executions.c.state == literal(source.value)


# Python None binds SQL NULL (not JSON null), so COALESCE keeps the column as it is.
OUTPUTS = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

_ENDS = (AttemptState.SUCCESS, AttemptState.ERROR, AttemptState.TIMEOUT)

CLAIMED_COLUMNS = (
    attempts.c.id,
    attempts.c.lease_version,
    attempts.c.claims,
    attempts.c.execution_id,
    attempts.c.tenant_id,
    attempts.c.step_id,
    attempts.c.step_type,
    attempts.c.visit,
    attempts.c.attempt,
    attempts.c.idempotency_key,
    attempts.c.error_context,
    attempts.c.created_at,
    attempts.c.run_after,
    attempts.c.wait_kind,
)


CLAIM_VALUES = {
    "state": AttemptState.RUNNING.value,
    "lease_version": attempts.c.lease_version + 1,
    "claims": attempts.c.claims + 1,
    "lease_until": bindparam("lease_until"),
    "worker_id": bindparam("worker"),
    "started_at": bindparam("now"),
}


def _claim_queued(*only: ColumnElement[bool]) -> Update:
    """Claim the oldest runnable queued attempts (of those that match ``only``).

    SKIP LOCKED lets many PostgreSQL workers claim side by side; SQLite renders no FOR UPDATE
    and serialises claims with its immediate write transaction instead."""
    return (
        update(attempts)
        .where(
            attempts.c.id.in_(
                select(attempts.c.id)
                .where(
                    ATTEMPT_QUEUED,
                    attempts.c.run_after <= bindparam("now"),
                    *only,
                )
                .order_by(attempts.c.run_after)
                .limit(bindparam("limit"))
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
        )
        .values(**CLAIM_VALUES)
        .returning(*CLAIMED_COLUMNS)
    )


CLAIM_QUEUED = _claim_queued()
# A tenant's share of a fair claim (see ``fabflow.engine.fairness``): the same walk of the
# queued index, keeping one tenant's rows.
CLAIM_TENANT = _claim_queued(attempts.c.tenant_id == bindparam("tenant"))

# The tenants with runnable work, and how much: what a fair claim is planned from. It reads
# every queued attempt (the queued index holds no tenant), so workers ask only now and then.
RUNNABLE_BY_TENANT = (
    select(attempts.c.tenant_id, func.count().label("n"))
    .where(ATTEMPT_QUEUED, attempts.c.run_after <= bindparam("now"))
    .group_by(attempts.c.tenant_id)
)

# Expired leases are found first (with who held them, for the event), then taken over.
EXPIRED = (
    select(attempts.c.id, attempts.c.worker_id, executions.c.order_id)
    .join(executions, executions.c.id == attempts.c.execution_id)
    .where(
        ATTEMPT_RUNNING,
        attempts.c.lease_until < bindparam("now"),
    )
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=attempts)
)
TAKE_OVER = (
    update(attempts)
    .where(attempts.c.id.in_(bindparam("ids", expanding=True)))
    .values(**CLAIM_VALUES)
    .returning(*CLAIMED_COLUMNS)
)

# Waits past their deadline: claimed as running (a worker ends each as a timeout through the
# flow's error path), their executions running again with them.
EXPIRED_WAITS = (
    select(attempts.c.id)
    .where(ATTEMPT_WAITING, attempts.c.wait_until <= bindparam("now"))
    .order_by(attempts.c.wait_until)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
TAKE_EXPIRED_WAITS = (
    update(attempts)
    .where(attempts.c.id.in_(bindparam("ids", expanding=True)))
    .where(attempt_guard(AttemptState.RUNNING, from_waiting=True))
    .values(**CLAIM_VALUES)
    .returning(*CLAIMED_COLUMNS)
)
WAKE_EXECUTIONS = (
    update(executions)
    .where(executions.c.id.in_(bindparam("ids", expanding=True)))
    .where(execution_guard(ExecutionState.RUNNING, ExecutionState.WAITING))
    .values(state=ExecutionState.RUNNING.value, updated_at=bindparam("now"))
)

START_EXECUTIONS = (
    update(executions)
    .where(executions.c.id.in_(bindparam("ids", expanding=True)))
    .where(execution_guard(ExecutionState.RUNNING, ExecutionState.PENDING))
    .values(state=ExecutionState.RUNNING.value, updated_at=bindparam("now"))
)

HEARTBEAT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempts.c.state == literal(AttemptState.RUNNING.value))  # a renewal, not a move
    .values(lease_until=bindparam("lease_until"))
)

FINISH_ATTEMPT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempt_guard(*_ENDS))
    .values(
        state=bindparam("state"),
        lease_until=None,
        ended_at=bindparam("now"),
        duration_ms=bindparam("duration_ms"),
        error_type=bindparam("error_type"),
        error_message=bindparam("error_message"),
        details=bindparam("details"),
    )
)

# A step that starts a wait: its attempt leaves the running (no lease) for the waiting.
PARK_ATTEMPT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempt_guard(AttemptState.WAITING))
    .values(
        state=AttemptState.WAITING.value,
        lease_until=None,
        duration_ms=bindparam("duration_ms"),
        details=bindparam("details"),
        wait_until=bindparam("wait_until"),
        wait_kind=bindparam("wait_kind"),
        callback_token=bindparam("callback_token"),
    )
)

# A wait resolved by a callback or a person (no lease: the waiting state is the guard).
RESOLVE_WAIT = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempt_guard(*_ENDS, from_waiting=True))
    .values(
        state=bindparam("state"),
        ended_at=bindparam("now"),
        error_type=bindparam("error_type"),
        error_message=bindparam("error_message"),
        resolution=bindparam("resolution"),
    )
)

# Every transition moves the order's updatedAt (what the orders list sorts on); a null status
# keeps the one the order has.
SET_STATUS = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"))
    .values(
        status=func.coalesce(bindparam("status", type_=String()), orders.c.status),
        updated_at=bindparam("now"),
    )
)
SET_FILES = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"))
    .values(files=bindparam("files"), updated_at=bindparam("now"))
)
GET_FILES = select(orders.c.files).where(orders.c.id == bindparam("order_id"))
ADD_HISTORY = insert(status_history)
ADD_EVENT = insert(events)
ADD_ATTEMPT = insert(attempts)

ADVANCE_EXECUTION = (
    update(executions)
    .where(executions.c.id == bindparam("execution_id"))
    # A worker's transition moves a running execution (the claim started it); a resolved
    # wait, a waiting one.
    .where(executions.c.state == bindparam("from_state"))
    .values(
        state=bindparam("state"),
        current_step=bindparam("current_step"),
        had_error=bindparam("had_error"),
        visits=bindparam("visits"),
        last_error=bindparam("last_error"),
        updated_at=bindparam("now"),
        ended_at=bindparam("ended_at"),
        # Null keeps them: most transitions add no output, and rewrite nothing.
        outputs=func.coalesce(bindparam("outputs", type_=OUTPUTS), executions.c.outputs),
    )
)

# The guard of a batch on PostgreSQL: the attempts' fencing tokens and their executions'
# states, locked (FOR UPDATE) so nothing moves between this check and the writes. SQLite's
# immediate transaction already holds the database's write lock: it reads the guard only
# after the fact, when needed (see ``transitions._finish_first``).
GUARD = (
    select(
        attempts.c.id,
        attempts.c.lease_version,
        attempts.c.state,
        executions.c.visits,
        executions.c.state.label("execution_state"),
    )
    .join(executions, executions.c.id == attempts.c.execution_id)
    .where(attempts.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)


RELEASE = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"))
    .where(attempts.c.lease_version == bindparam("version"))
    .where(attempt_guard(AttemptState.QUEUED))
    .values(
        state=AttemptState.QUEUED.value,
        lease_until=None,
        worker_id=None,
        run_after=bindparam("now"),
    )
)
