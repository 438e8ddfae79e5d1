"""Persisted state values. Lowercase strings that never change: rows in databases hold them."""

from __future__ import annotations

from enum import StrEnum


class ExecutionState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in ENDED_EXECUTION_STATES


ENDED_EXECUTION_STATES = frozenset(
    {ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELLED}
)


class AttemptState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """How one attempt ended."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
