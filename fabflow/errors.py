"""The error tree of fabflow.

Every error fabflow raises on purpose derives from ``FabflowError`` and carries a stable
``code`` that API bodies and scripts can rely on::

    FabflowError
     ├── ConfigError              bad settings or environment
     ├── InvalidInput             bad user input, with problems (pointer + message)
     │    ├── InvalidFlow         a flow document that does not validate
     │    └── InvalidOrder        an order refused at intake
     ├── NotFound                 an object that does not exist (or belongs to another tenant)
     ├── Conflict                 an action that the object's state does not allow
     ├── StoreError               the database failed
     │    └── StoreUnavailable    the database is out of reach (worth waiting out)
     └── StepError                a step attempt failed (see fabflow.steps.base)
          ├── TransientStepError  worth retrying (connection, timeout, 5xx, SMTP 4xx)
          └── PermanentStepError  retrying will not help (4xx, bad template, bad parameters)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One problem in a document: where (a JSON Pointer) and what."""

    pointer: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message, "severity": self.severity}


class FabflowError(Exception):
    """Root of every error fabflow raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(FabflowError):
    code = "config_error"


class InvalidInput(FabflowError):
    """Input refused whole; ``problems`` lists every reason with a pointer."""

    code = "invalid_input"

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class InvalidFlow(InvalidInput):
    code = "invalid_flow"


class InvalidOrder(InvalidInput):
    code = "invalid_order"


class NotFound(FabflowError):
    code = "not_found"


class Conflict(FabflowError):
    code = "conflict"


class StoreError(FabflowError):
    code = "store_error"


class StoreUnavailable(StoreError):
    """The database is out of reach (connection refused or lost): worth waiting out."""

    code = "store_unavailable"


class StepError(FabflowError):
    """A step attempt failed.

    ``error_type`` is a short stable word shown to operators and handed to the error path
    (``connection``, ``timeout``, ``http_status``, ``smtp``, ``template``, ``parameters`` ...).
    ``details`` holds what helps fix it (HTTP status, response excerpt, SMTP reply).
    """

    code = "step_error"
    transient = False

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "error",
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.details = dict(details or {})
        self.retry_after = retry_after


class TransientStepError(StepError):
    code = "transient_step_error"
    transient = True


class PermanentStepError(StepError):
    code = "permanent_step_error"
    transient = False
