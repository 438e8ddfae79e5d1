"""Registry of step executors, filled from the ``fabflow.steps`` entry point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from fabflow.flows.registry import register_step_type, unregister_step_type
from fabflow.steps.base import StepExecutor

log = logging.getLogger(__name__)

_EXECUTORS: dict[str, type[StepExecutor]] = {}
_loaded = False


def register(executor: type[StepExecutor]) -> type[StepExecutor]:
    """Register an executor class (usable as a decorator); its type becomes valid in flows."""
    _EXECUTORS[executor.type_name] = executor
    register_step_type(executor.type_name, executor.options_model)
    return executor


def unregister(type_name: str) -> None:
    """Forget a step type (tests register temporary ones)."""
    _EXECUTORS.pop(type_name, None)
    unregister_step_type(type_name)


def load_entry_points() -> None:
    """Import every executor named in the ``fabflow.steps`` entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group="fabflow.steps"):
        try:
            register(ep.load())
        except Exception:  # a broken plugin must not take the others down
            log.exception("could not load step type %r from %s", ep.name, ep.value)


def executors() -> dict[str, type[StepExecutor]]:
    load_entry_points()
    return dict(_EXECUTORS)
