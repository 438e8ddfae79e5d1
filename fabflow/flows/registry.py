"""Step types known to the flow language, each with its options model.

The three spec types, ``manual-confirmation`` and ``choice`` are built in; plugins add theirs
through ``fabflow.steps.registry``, which calls ``register_step_type`` for every executor found
in the ``fabflow.steps`` entry points.
"""

from __future__ import annotations

from pydantic import BaseModel

from fabflow.flows.choice import CHOICE, ChoiceOptions
from fabflow.flows.options import (
    ConsumeRestApiOptions,
    GenerateProductionFilesOptions,
    ManualConfirmationOptions,
    SendEmailOptions,
)

_BUILTIN: dict[str, type[BaseModel]] = {
    "consume-rest-api": ConsumeRestApiOptions,
    "send-email": SendEmailOptions,
    "generate-production-files": GenerateProductionFilesOptions,
    "manual-confirmation": ManualConfirmationOptions,
    CHOICE: ChoiceOptions,
}
_STEP_TYPES: dict[str, type[BaseModel]] = dict(_BUILTIN)


def register_step_type(name: str, options_model: type[BaseModel]) -> None:
    """Make ``name`` a valid step ``type`` whose options validate against ``options_model``."""
    _STEP_TYPES[name] = options_model


def unregister_step_type(name: str) -> None:
    """Forget a plugin's step type (the built-in types stay)."""
    if name not in _BUILTIN:
        _STEP_TYPES.pop(name, None)


def step_types() -> dict[str, type[BaseModel]]:
    """Every known step type and its options model (a copy)."""
    return dict(_STEP_TYPES)


def options_model(name: str) -> type[BaseModel] | None:
    return _STEP_TYPES.get(name)
