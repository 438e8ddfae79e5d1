"""Running one attempt: its executor as one task, cut off at its deadline, its end decided.

``AttemptRunner`` holds the attempts in progress on a worker. When one ends (its executor
returned or raised, its deadline passed) the lifecycle decides the transition, which waits in
``outbox`` for the worker's next database cycle; its slot stays taken (``unrecorded``) until
that commit, so a worker that dies leaves at most one unrecorded side effect per slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fabflow.engine.choices import ChoiceBook, Chooser
from fabflow.engine.clock import Clock
from fabflow.errors import StepError
from fabflow.files import FileStore
from fabflow.flows.model import CHOICE
from fabflow.lifecycle.retry import RetryPolicy
from fabflow.lifecycle.states import Outcome
from fabflow.lifecycle.transition import AttemptEnd, Decision, decide, step_missing
from fabflow.resources import steps_view
from fabflow.settings import Settings
from fabflow.steps.base import StepContext, StepExecutor, StepResult, Wait
from fabflow.steps.redact import forms, redact
from fabflow.store.queue.records import AttemptRecord, ParkedWait, Transition, Work
from fabflow.store.queue.transitions import route_details
from fabflow.tokens import hash_token

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Running:
    """An attempt in progress on this worker: one task, and its deadline."""

    work: Work
    cancelled: asyncio.Event
    started: float  # perf_counter
    leased_at: float  # wall clock, no later than its lease last began (claim or heartbeat)
    task: asyncio.Task[StepResult] | None = None
    deadline: float = float("inf")  # the clock's monotonic time
    timeout_s: float = 0.0
    lost: bool = False  # the lease is gone: nothing of this attempt may be recorded
    ended: bool = False  # its end (result, error or timeout) is decided


@dataclass(slots=True)
class Completion:
    """A finished attempt waiting for the next database cycle to record it."""

    transition: Transition
    queued: float  # perf_counter when it joined the outbox


class AttemptRunner:
    """Starts attempts, ends them, and keeps what the worker's cycle must record."""

    def __init__(
        self,
        executors: dict[str, StepExecutor],
        settings: Settings,
        files: FileStore,
        clock: Clock,
        on_slot_free: Callable[[], None],
    ) -> None:
        self.executors = executors
        self.settings = settings
        self.files = files
        self.clock = clock
        self.on_slot_free = on_slot_free
        self.default_policy = RetryPolicy.from_settings(settings)
        self.running: dict[int, Running] = {}
        self.tenants: Counter[str] = Counter()  # the attempts in ``running``, by tenant
        self.outbox: list[Completion] = []
        self.unrecorded = 0  # finished attempts whose transitions are not committed yet
        self.choices = ChoiceBook()

    @property
    def light_types(self) -> frozenset[str]:
        """Step types whose executors read nothing of the order but its id."""
        return frozenset(name for name, ex in self.executors.items() if not ex.needs_order)

    def start(self, work: Work, leased_at: float) -> None:
        """Start one attempt: its executor runs as one task, cut off at its deadline (see
        ``cut_off_late``), even if the step swallows cancellation."""
        claim = work.claim
        running = Running(work, asyncio.Event(), time.perf_counter(), leased_at)
        earlier = self.running.get(claim.attempt_id)
        if earlier is not None:
            # This worker took its own attempt over: its lease ran out unnoticed (the loop
            # stalled past the lease). The new claim is the one that holds it.
            log.warning(
                "attempt %s: taken over by this very worker; stopping its first run",
                claim.attempt_id,
            )
            self.abandon(earlier)
        self.running[claim.attempt_id] = running
        self.tenants[claim.tenant_id] += 1
        step = work.step
        if step is None:
            self._end(running, _failure(claim.attempt, f"no step {claim.step_id!r}"))
            return
        if claim.wait_kind is not None:  # a wait past its deadline, to be timed out
            self._end(running, _wait_timed_out(claim.attempt, claim.wait_kind))
            return
        if claim.taken_over:
            log.warning(
                "taking over attempt %s of step %r (lease expired)", claim.attempt_id, claim.step_id
            )
        if work.secrets_problem is not None:  # its options read secrets no key opens
            self._end(running, _secrets_failed(claim.attempt, work.secrets_problem))
            return
        if step.type == CHOICE:  # no I/O: evaluated now, on the order just read
            hop = Chooser(work, work.outputs, self.choices).now(step)
            end = AttemptEnd(Outcome.SUCCESS, claim.attempt)
            if hop.route is None:
                end = AttemptEnd(Outcome.ERROR, claim.attempt, "expression", hop.error)
            details = None if hop.route is None else route_details(hop.route)
            self._end(running, end, details=details, decision=hop.decision)
            return
        executor = self.executors.get(step.type)
        if executor is None:
            message = (
                f"no executor for step type {step.type!r}: is its plugin installed on this worker?"
            )
            self._end(running, _failure(claim.attempt, message))
            return
        running.timeout_s = step.timeout_s or self.settings.default_step_timeout_ms / 1000
        running.task = asyncio.get_running_loop().create_task(
            executor.execute(self._context(running))
        )
        running.deadline = self.clock.monotonic() + running.timeout_s
        running.task.add_done_callback(functools.partial(self._done, running))

    def cut_off_late(self) -> None:
        """End the attempts past their deadline, as timeouts."""
        now = self.clock.monotonic()
        for running in [r for r in self.running.values() if r.deadline <= now]:
            self._timed_out(running)

    def abandon(self, running: Running) -> None:
        """The lease is lost (or given back): stop the attempt, record nothing of it."""
        running.lost = True
        running.cancelled.set()
        if running.task is not None:
            running.task.cancel()
        self._remove(running)

    def take_outbox(self) -> list[Completion]:
        batch, self.outbox = self.outbox, []
        return batch

    # -- how an attempt ends -------------------------------------------------------------

    def _done(self, running: Running, task: asyncio.Task[StepResult]) -> None:
        """The executor's task finished: its outcome decides the attempt, unless the deadline
        or a lost lease already did."""
        if task.cancelled():
            if not running.ended and not running.lost:
                log.warning(
                    "attempt %s was cancelled; its lease will expire", running.work.claim.attempt_id
                )
                self._forget(running)
            return
        if running.ended or running.lost:
            task.exception()  # retrieved: the result no longer matters
            return
        self._end(running, *_outcome(task, running.work.claim.attempt))

    def _timed_out(self, running: Running) -> None:
        if running.ended or running.lost:
            return
        running.cancelled.set()
        assert running.task is not None
        running.task.cancel()
        step_id = running.work.claim.step_id
        message = f"step {step_id!r} did not finish within {running.timeout_s:g} s"
        end = AttemptEnd(Outcome.TIMEOUT, running.work.claim.attempt, "timeout", message)
        self._end(running, end)

    def _end(
        self,
        running: Running,
        end: AttemptEnd,
        result: StepResult | None = None,
        details: dict[str, Any] | None = None,
        decision: Decision | None = None,
    ) -> None:
        """Decide the transition (unless ``decision`` is given: a choice's), and evaluate the
        choices it leads to; the next database cycle records it."""
        running.ended = True
        work = running.work
        if work.secrets:  # nothing a step reports may show a secret's value
            end, details = _redacted(end, details, forms(work.secrets.values()))
        wait = result.wait if result is not None else None
        if wait is not None:
            end = AttemptEnd(Outcome.WAIT, end.attempt)
        record = AttemptRecord(
            duration_ms=(time.perf_counter() - running.started) * 1000,
            error_type=end.error_type,
            error_message=end.error_message,
            details=details or {},
            files=result.files if result is not None else None,
            wait=None if wait is None else self._parked(work, wait),
        )
        if decision is None:
            decision = self._decide(work, end)
        outputs = self._outputs(work, result)
        hops = None
        if decision.next is not None and work.flow.is_choice(decision.next.step_id):
            held = work.outputs if outputs is None else outputs
            hops = Chooser(work, held, self.choices).after(decision)
        final = hops[-1].decision if hops else decision
        next_type = ""
        if final.next is not None and final.next.step_id in work.flow:
            next_type = work.flow.step(final.next.step_id).type
        order_id = work.order["id"]
        transition = Transition(
            work.claim, order_id, decision, record, next_type, work.visits, hops, outputs
        )
        self.outbox.append(Completion(transition, time.perf_counter()))
        self.unrecorded += 1
        self._forget(running)

    @staticmethod
    def _outputs(work: Work, result: StepResult | None) -> dict[str, Any] | None:
        """The execution's outputs with this step's (its latest visit wins); None when the
        step reports none (the stored outputs stay as they are)."""
        if result is None or result.output is None:
            return None
        output = result.output
        if work.secrets:  # a receiver that echoes a secret must not get it stored
            output = redact(output, forms(work.secrets.values()))
        return {**work.outputs, work.claim.step_id: output}

    def _parked(self, work: Work, wait: Wait) -> ParkedWait:
        """The wait as stored: until the step's timeout (or the default wait) from now, and
        only the hash of its callback token (the token is the receiver's credential)."""
        step = work.step
        seconds = step.timeout_s if step is not None and step.timeout_s else None
        until = self.clock.time() + (seconds or self.settings.default_wait_ms / 1000)
        token_hash = None if wait.token is None else hash_token(wait.token)
        return ParkedWait(until, wait.kind, token_hash)

    def _decide(self, work: Work, end: AttemptEnd) -> Decision:
        step = work.step
        if step is None:
            return step_missing()
        return decide(
            step,
            end,
            policy=step.retry_policy(self.default_policy),
            had_error=work.had_error,
            error_context=work.claim.error_context,
        )

    def _forget(self, running: Running) -> None:
        self._remove(running)
        self.on_slot_free()

    def _remove(self, running: Running) -> None:
        claim = running.work.claim
        if self.running.pop(claim.attempt_id, None) is None:
            return  # abandoned already
        left = self.tenants[claim.tenant_id] - 1
        if left > 0:
            self.tenants[claim.tenant_id] = left
        else:
            del self.tenants[claim.tenant_id]

    def _context(self, running: Running) -> StepContext:
        work, claim = running.work, running.work.claim
        step = work.flow.step(claim.step_id)
        return StepContext(
            order=work.order,
            flow=work.flow_meta,
            step_id=step.step_definition_id,
            step_type=step.type,
            success_status=step.success_status,
            options=step.options,
            timeout_s=running.timeout_s,
            idempotency_key=claim.idempotency_key,
            attempt=claim.attempt,
            settings=self.settings,
            files=self.files,
            cancelled=running.cancelled,
            error=claim.error_context,
            tenant=claim.tenant_id,
            stored_files=work.stored_files,
            steps=steps_view(work.outputs, work.order.get("files") or ()),
            deadline_enforced=True,  # cut_off_late
            secrets=work.secrets,
        )


def _wait_timed_out(attempt: int, kind: str) -> AttemptEnd:
    what = "callback" if kind == "callback" else "confirmation"
    message = f"no {what} arrived before the step's deadline"
    return AttemptEnd(Outcome.TIMEOUT, attempt, "timeout", message, waited=True)


def _secrets_failed(attempt: int, message: str) -> AttemptEnd:
    return AttemptEnd(Outcome.ERROR, attempt, "secrets", message)


def _redacted(
    end: AttemptEnd, details: dict[str, Any] | None, hidden: list[str]
) -> tuple[AttemptEnd, dict[str, Any] | None]:
    if end.error_message:
        end = dataclasses.replace(end, error_message=redact(end.error_message, hidden))
    return end, None if details is None else redact(details, hidden)


def _failure(attempt: int, message: str) -> AttemptEnd:
    return AttemptEnd(Outcome.ERROR, attempt, "internal", message)


def _outcome(
    task: asyncio.Future[StepResult], attempt: int
) -> tuple[AttemptEnd, StepResult | None, dict[str, Any]]:
    exc = task.exception()
    if exc is None:
        result = task.result()
        return AttemptEnd(Outcome.SUCCESS, attempt), result, result.details
    if isinstance(exc, StepError):
        end = AttemptEnd(
            Outcome.ERROR, attempt, exc.error_type, exc.message, exc.transient, exc.retry_after
        )
        return end, None, exc.details
    if isinstance(exc, OSError):  # the disk under the file store or the outbox: full,
        # read-only, unmounted. Worth retrying as any outage is, not a fault of the order.
        message = f"could not write the step's files: {type(exc).__name__}: {exc}"
        return AttemptEnd(Outcome.ERROR, attempt, "storage", message, transient=True), None, {}
    log.error("step raised an unexpected error", exc_info=exc)
    return _failure(attempt, f"{type(exc).__name__}: {exc}"), None, {}
