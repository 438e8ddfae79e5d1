"""The interface every step executor implements, and what it is given.

An executor is created once per worker process, ``start``-ed before the first attempt (open
shared clients there), asked to ``execute`` many attempts concurrently, and ``close``-d on
shutdown. ``execute`` returns a ``StepResult`` on success and raises a ``StepError`` subclass
(``TransientStepError`` or ``PermanentStepError``) on failure; anything else it raises is
recorded as a permanent error of type ``internal``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from fabflow.files import FileStore
    from fabflow.settings import Settings

T = TypeVar("T")


@dataclass(slots=True)
class StepContext:
    """Everything one attempt of one step may use. Read it, never change it (it is not
    ``frozen`` because one is made per attempt, and frozen dataclasses are slower to make)."""

    order: dict[str, Any]  # the order resource (DESIGN section 5), JSON-ready
    flow: dict[str, Any]  # {"id", "name", "version"}
    step_id: str
    step_type: str
    success_status: str
    options: Any  # an instance of the executor's options_model
    timeout_s: float  # the attempt's deadline
    idempotency_key: str  # the same for every attempt of one step visit
    attempt: int  # 1-based attempt number within the visit
    settings: Settings
    files: FileStore
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    error: dict[str, Any] | None = None  # on an error path: stepDefinitionId, type, message
    tenant: str = ""  # the tenant id (for file keys); never sent to receivers
    stored_files: tuple[dict[str, Any], ...] = ()  # the order's file records, with store keys
    # True when the caller cuts the attempt off at ``timeout_s`` itself (the worker does, with
    # one timer for all its attempts, and records the attempt as timed out): an executor then
    # need not keep a timer of its own. Called directly (tests, tools), it must.
    deadline_enforced: bool = False
    # The tenant's secrets by name, decrypted (``secrets.NAME`` in templates); loaded only
    # for steps whose options mention ``secrets``. Never logged or recorded.
    secrets: dict[str, str] = field(default_factory=dict)
    # The outputs of the steps that ran before in this execution, by step id (latest visit).
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def template_context(self) -> dict[str, Any]:
        """What templates may read: order, steps, error, step, flow, secrets."""
        step = {"id": self.step_id, "type": self.step_type, "successStatus": self.success_status}
        return {
            "order": self.order,
            "steps": self.steps,
            "error": self.error,
            "step": step,
            "flow": self.flow,
            "secrets": self.secrets,
        }


async def within_deadline(ctx: StepContext, awaitable: Awaitable[T]) -> T:
    """``awaitable``, cut off at the attempt's deadline (``TimeoutError``) unless the caller
    cuts it off itself (``ctx.deadline_enforced``: the worker keeps one timer for all its
    attempts, so a timer per attempt would be spent for nothing)."""
    if ctx.deadline_enforced:
        return await awaitable
    async with asyncio.timeout(ctx.timeout_s):
        return await awaitable


@dataclass(slots=True)
class Wait:
    """The step waits: a callback (``token`` is its credential, given to the receiver) or a
    person (an operator confirms or rejects) ends it, or the step's deadline does."""

    kind: str  # "callback" or "confirmation"
    token: str | None = None


@dataclass(slots=True)
class StepResult:
    """What a successful attempt reports."""

    details: dict[str, Any] = field(default_factory=dict)  # recorded on the attempt
    files: list[dict[str, Any]] = field(default_factory=list)  # production files made
    wait: Wait | None = None  # set: the step is not over, it waits
    # What later steps read as ``steps.<id>`` (JSON), e.g. {"response": {...}}; None: nothing.
    output: dict[str, Any] | None = None


class StepExecutor(ABC):
    """One step type's behaviour. Subclasses set ``type_name`` and ``options_model``."""

    type_name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]
    # False: the step reads no more of the order than its id, and the worker skips building
    # the full order resource (every attempt and status) for it.
    needs_order: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open shared resources (client pools, process pools)."""

    @abstractmethod
    async def execute(self, ctx: StepContext) -> StepResult:
        """Run one attempt; raise a StepError subclass on failure."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` opened."""
