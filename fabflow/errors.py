"""The error tree of fabflow.

Every error fabflow raises on purpose derives from ``FabflowError`` and carries a stable
``code`` that API bodies and scripts can rely on::

    FabflowError
     ├── ConfigError              bad settings or environment
     ├── InvalidInput             bad user input, with problems (pointer + message)
     │    ├── InvalidFlow         a flow document that does not validate
     │    ├── InvalidOrder        an order refused at intake
     │    ├── InvalidProduct      a product model refused at upload (with file and line)
     │    └── ParameterError      product parameters a builder cannot make
     ├── NotFound                 an object that does not exist (or belongs to another tenant)
     │    └── UnknownProduct      no product has this name
     ├── Conflict                 an action that the object's state does not allow
     │    └── WaitNotReady        a callback came before its wait was recorded
     ├── StoreError               the database failed
     │    └── StoreUnavailable    the database is out of reach (worth waiting out)
     ├── ProductionError          making production files failed
     │    ├── MeshCheckFailed     a part is not a printable solid
     │    ├── PoolTimeout         a build overran its deadline; its process was killed
     │    ├── WorkerCrashed       the process building a part died
     │    └── RenderFailed        a product model did not render (openscad's reason)
     └── StepError                a step attempt failed (see fabflow.steps.base)
          ├── TransientStepError  worth retrying (connection, timeout, 5xx, SMTP 4xx)
          └── PermanentStepError  retrying will not help (4xx, bad template, bad parameters)

Third-party errors are translated where fabflow meets them, through one table per adapter
(``translate``), and raised ``from`` the original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar


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


class InvalidProduct(InvalidInput):
    """A product model refused at upload: its parameters cannot be read, a file it reads is
    outside its folder or missing, or it does not render with its defaults."""

    code = "invalid_product"


class ParameterError(InvalidInput):
    """A parameter value a product's builder cannot make (intake normally refuses it first);
    ``parameter`` is the JSON key."""

    code = "parameter_error"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message, [Problem(f"/{parameter}" if parameter else "", message)])
        self.parameter = parameter

    def __str__(self) -> str:
        return f"{self.parameter}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries with its arguments
        return type(self), (self.parameter, self.message)


class NotFound(FabflowError):
    code = "not_found"


class UnknownProduct(NotFound):
    """No product has this name; ``suggestion`` is the closest name, if any is close."""

    code = "unknown_product"

    def __init__(self, name: str, suggestion: str | None) -> None:
        hint = f' (did you mean "{suggestion}"?)' if suggestion else ""
        super().__init__(f'no product is named "{name}"{hint}')
        self.name = name
        self.suggestion = suggestion

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.name, self.suggestion)


class Conflict(FabflowError):
    code = "conflict"


class WaitNotReady(Conflict):
    """A callback came before its wait was recorded (the step's POST is still being recorded,
    or its worker died before recording it and the step runs again): it may be sent again."""

    code = "wait_not_ready"


class StoreError(FabflowError):
    code = "store_error"


class StoreUnavailable(StoreError):
    """The database is out of reach (connection refused or lost): worth waiting out."""

    code = "store_unavailable"


class ProductionError(FabflowError):
    """Making an order line's production files failed."""

    code = "production_error"


class MeshCheckFailed(ProductionError):
    """A part is not a printable solid; the file is not delivered."""

    code = "mesh_check_failed"

    def __init__(self, part: str, problems: list[str]) -> None:
        super().__init__(f"part {part!r} is not a printable solid: " + "; ".join(problems))
        self.part = part
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.part, self.problems)


class PoolTimeout(ProductionError):
    """A build did not finish in time; its process was killed."""

    code = "pool_timeout"


class WorkerCrashed(ProductionError):
    """The process building a part died (out of memory, a crash in C code)."""

    code = "worker_crashed"


class RenderFailed(ProductionError):
    """A product model did not render: openscad's error, a limit it hit, or its timeout."""

    code = "render_failed"


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


_E = TypeVar("_E", bound=FabflowError)
_Call = TypeVar("_Call")
# An adapter's table: a third-party exception class -> what makes our error of it, given the
# exception and what the adapter knows of the call (its URL, its deadline ...).
ErrorTable = Mapping[type[BaseException], Callable[[Any, _Call], _E]]


def translate(exc: BaseException, table: ErrorTable[_Call, _E], call: _Call) -> _E | None:
    """Our error for ``exc``: made by the table's entry for the nearest class in ``exc``'s MRO
    (so a subclass listed in the table wins over its base); None when no class is listed.
    The caller raises it ``from exc``, or re-raises ``exc`` on None."""
    for cls in type(exc).__mro__:
        make = table.get(cls)
        if make is not None:
            return make(exc, call)
    return None
