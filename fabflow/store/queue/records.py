"""What the queue hands the worker and takes back: typed records, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fabflow.flows.model import Flow, StepDefinition
from fabflow.lifecycle.route import Hop
from fabflow.lifecycle.transition import Decision


@dataclass(slots=True)
class Claim:
    """An attempt a worker holds, with the lease version (fencing token) that proves it."""

    attempt_id: int
    lease_version: int
    claims: int
    execution_id: str
    tenant_id: str
    step_id: str
    step_type: str
    visit: int
    attempt: int
    idempotency_key: str
    error_context: dict[str, Any] | None
    created_at: float
    run_after: float
    wait_kind: str | None = None  # set: a wait past its deadline, claimed to be timed out

    @property
    def taken_over(self) -> bool:
        """Another worker held this attempt before and lost its lease."""
        return self.claims > 1


@dataclass(slots=True)
class Work:
    """A claimed attempt with what running it needs: its flow, its order, its execution."""

    claim: Claim
    flow: Flow
    flow_meta: dict[str, Any]  # {"id", "name", "version"}
    order: dict[str, Any]  # the order resource ({"id"} alone for steps that read no more)
    stored_files: tuple[dict[str, Any], ...]  # the order's file records, with their store keys
    had_error: bool  # an earlier step of the execution ended in error
    visits: int  # the execution's step visits so far
    # The tenant's secrets, decrypted, for a step whose options mention them (else empty);
    # ``secrets_problem`` says why they could not be read (the attempt then fails).
    secrets: dict[str, str] = field(default_factory=dict)
    secrets_problem: str | None = None

    # The outputs of the steps run so far (``executions.outputs``, as stored), by step id.
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> StepDefinition | None:
        """The step to run; None when the flow version has no such step."""
        step_id = self.claim.step_id
        return self.flow.step(step_id) if step_id in self.flow else None


@dataclass(slots=True)
class AttemptRecord:
    """What is recorded on the attempt row when it ends."""

    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    details: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    wait: ParkedWait | None = None  # the step waits: until when, on what


@dataclass(slots=True)
class ParkedWait:
    """A wait an attempt starts: its deadline (wall clock), what ends it, and the sha256 of
    its callback token (None when a person ends it)."""

    until: float
    kind: str  # "callback" or "confirmation"
    token_hash: str | None = None


@dataclass(slots=True)
class Transition:
    """One attempt's end, decided, ready to be recorded."""

    held: Claim
    order_id: str
    decision: Decision
    record: AttemptRecord
    next_type: str = ""  # the step type of the final decision's ``next``
    visits: int | None = None  # the execution's visits when claimed (None: read them)
    hops: list[Hop] | None = None  # the choices evaluated after this step, in order
    outputs: dict[str, Any] | None = None  # the execution's outputs to store (None: as is)

    @property
    def final(self) -> Decision:
        """Where the execution goes: the last choice's decision, or the step's own."""
        return self.hops[-1].decision if self.hops else self.decision
