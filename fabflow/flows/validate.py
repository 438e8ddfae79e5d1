"""Load a flow document and report every problem in it at once.

``load_flow`` never raises on bad input: it returns the flow (when there is no error) and every
problem found, each with a JSON Pointer into the document. ``parse_flow`` is the strict variant
for callers that want a ``Flow`` or an ``InvalidFlow`` error.

The checks run in four passes so that one mistake does not hide the others: the document's
shape, then each step on its own (keys, types, options of its type), then the graph (duplicate
ids, dangling and self references, loops, unreachable steps), then the templates and choice
expressions against the context each step will have (``fabflow.flows.context``).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fabflow.errors import InvalidFlow, Problem
from fabflow.flows import graph
from fabflow.flows.context import check_templates
from fabflow.flows.model import (
    CHOICE,
    MAX_FLOW_DEADLINE_MS,
    MAX_ID_LENGTH,
    Flow,
    StepDefinition,
    step_base,
    steps_adapter,
)
from fabflow.flows.problems import from_validation_error, json_type, pointer, show, suggest
from fabflow.flows.registry import step_types

DEFAULT_MAX_STEPS = 5000
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_MAX_SUGGESTED_REFERENCES = 50  # difflib over thousands of ids is slow; enough to fix typos
_LONG_LOOP = 12

Source = str | bytes | list[Any] | dict[str, Any]


@dataclass(frozen=True)
class ValidationResult:
    """A loaded flow (None when any error was found) and every problem found."""

    flow: Flow | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when the flow loaded (warnings allowed)."""
        return self.flow is not None


class _FlowDocument(BaseModel):
    """The object form ``{"name", "steps", "description"?, "deadline"?}``; steps are checked
    one by one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    steps: list[Any]
    description: str = Field(default="", max_length=10_000)
    deadline: float | None = Field(default=None, gt=0, le=MAX_FLOW_DEADLINE_MS, allow_inf_nan=False)


class _Unchecked(BaseModel):
    """Stands in for options that failed (or could not be) checked, so the rest still is."""


_UNCHECKED = _Unchecked()


def load_flow(
    source: Source,
    *,
    name: str = "flow",
    max_steps: int = DEFAULT_MAX_STEPS,
    types: Mapping[str, type[BaseModel]] | None = None,
) -> ValidationResult:
    """Validate ``source`` (JSON text, or the decoded array or object) and load it.

    ``name`` names a flow given in the array form; ``types`` defaults to the registry.
    """
    with _collector_paused():
        return _load(source, name, max_steps, step_types() if types is None else types)


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A big flow makes tens of thousands of small objects that hold no cycles; the collector
    # runs many times meanwhile only to rescan them (a quarter of the time of a 2,000-step flow).
    # Re-enabled only if it was on, so nested or concurrent callers leave it as they found it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(
    source: Source, name: str, max_steps: int, types: Mapping[str, type[BaseModel]]
) -> ValidationResult:
    if isinstance(source, str | bytes):
        doc, problem = _decode(source)
        if problem is not None:
            return ValidationResult(None, [problem])
    else:
        doc = source
    problems: list[Problem] = []
    if _may_hold_nul(source):
        problems += _nul_problems(doc)
    shape = _shape(doc, name, problems)
    if shape is None:
        return ValidationResult(None, problems)
    raw_steps, base, flow_name, description, deadline = shape
    if len(raw_steps) > max_steps:
        message = f"too many steps: {len(raw_steps)} (at most {max_steps})"
        return ValidationResult(None, [*problems, Problem(base, message)])
    steps = _validate_steps(raw_steps, base, types, problems)
    nodes = _check_graph(raw_steps, base, problems)
    check_templates(raw_steps, base, nodes, problems)
    if steps is None or any(p.severity == "error" for p in problems):
        return ValidationResult(None, problems)
    return ValidationResult(Flow(flow_name, tuple(steps), description, deadline), problems)


MAX_NUL_PROBLEMS = 20


def _may_hold_nul(source: Any) -> bool:
    """Whether ``source`` may hold a NUL: cheap, and never wrong when it says no."""
    # JSON writes NUL only as the escape \u0000 (a raw control character is malformed), and
    # orjson writes a decoded document back in a few milliseconds where a walk takes tens.
    if isinstance(source, str):
        return "\\u0000" in source
    if not isinstance(source, bytes):
        try:
            source = orjson.dumps(source)
        except TypeError:  # not JSON data: let the walk look
            return True
    return b"\\u0000" in source


def _nul_problems(doc: Any) -> list[Problem]:
    """A problem at each text or key holding NUL (\\u0000): PostgreSQL cannot store it, so a
    flow is refused with it on every store, with where it is."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack and len(problems) < MAX_NUL_PROBLEMS:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                problems.append(Problem(where, "the text contains a NUL character (\\u0000)"))
        elif isinstance(item, dict):
            for key, value in item.items():
                at = pointer(where, key)
                if "\x00" in key:
                    problems.append(Problem(at, "the key contains a NUL character (\\u0000)"))
                stack.append((value, at))
        elif isinstance(item, list):
            stack += [(value, pointer(where, i)) for i, value in enumerate(item)]
    return problems


def parse_flow(
    source: Source,
    *,
    name: str = "flow",
    max_steps: int = DEFAULT_MAX_STEPS,
    types: Mapping[str, type[BaseModel]] | None = None,
) -> Flow:
    """The flow in ``source``; raises ``InvalidFlow`` carrying every problem otherwise."""
    result = load_flow(source, name=name, max_steps=max_steps, types=types)
    if result.flow is not None:
        return result.flow
    errors = result.errors
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{first.pointer}: " if first.pointer else ""
    raise InvalidFlow(f"invalid flow: {where}{first.message}{more}", result.problems)


# -- pass 1: the document ---------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _decode(text: str | bytes) -> tuple[Any, Problem | None]:
    if len(text) > MAX_DOCUMENT_BYTES:
        return None, Problem("", f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        return None, Problem("", message)
    except UnicodeDecodeError as exc:
        return None, Problem("", f"the document is not UTF-8 text ({exc.reason})")
    except RecursionError:
        return None, Problem("", "malformed JSON: arrays or objects nested too deeply")
    except ValueError as exc:  # NaN/Infinity, or an integer with too many digits
        return None, Problem("", f"malformed JSON: {exc}")


_Shape = tuple[list[Any], str, str, str, float | None]


def _shape(doc: Any, name: str, problems: list[Problem]) -> _Shape | None:
    """``(steps, pointer of the step list, name, description, deadline)``, or None when
    unusable."""
    if isinstance(doc, list):
        shape: _Shape | None = (doc, "", name, "", None)
    elif isinstance(doc, dict):
        shape = _object_shape(doc, name, problems)
    else:
        message = 'a flow is a JSON array of step definitions, or an object with "name" and'
        problems.append(Problem("", f'{message} "steps"; got {json_type(doc)}'))
        return None
    if shape is not None and not shape[0]:
        problems.append(
            Problem(shape[1], "the flow has no steps: add at least one step definition")
        )
        return None
    return shape


def _object_shape(doc: dict[str, Any], name: str, problems: list[Problem]) -> _Shape | None:
    description, deadline = "", None
    try:
        envelope = _FlowDocument.model_validate(doc)
        name, description, deadline = envelope.name, envelope.description, envelope.deadline
    except ValidationError as exc:
        problems.extend(from_validation_error(exc, "", _FlowDocument))
    steps = doc.get("steps")
    return (steps, "/steps", name, description, deadline) if isinstance(steps, list) else None


# -- pass 2: each step ------------------------------------------------------------------------


def _validate_steps(
    raw_steps: list[Any],
    base: str,
    types: Mapping[str, type[BaseModel]],
    problems: list[Problem],
) -> list[StepDefinition] | None:
    """The typed steps, or None with the problems of each step added to ``problems``."""
    try:
        # Fast path: most flows are valid, and one call checks them all without leaving Rust
        # for more than the email and URL checks.
        steps: list[StepDefinition] = steps_adapter(types).validate_python(raw_steps)
        return steps
    except ValidationError:
        # Slow path: step by step, so that each problem gets a precise pointer and message.
        return _check_steps(raw_steps, base, types, problems)


def _check_steps(
    raw_steps: list[Any],
    base: str,
    types: Mapping[str, type[BaseModel]],
    problems: list[Problem],
) -> list[StepDefinition] | None:
    steps: list[StepDefinition] = []
    for i, raw in enumerate(raw_steps):
        step = _check_step(raw, f"{base}/{i}", types, problems)
        if step is not None:
            steps.append(step)
    return steps if len(steps) == len(raw_steps) else None


def _check_step(
    raw: Any, at: str, types: Mapping[str, type[BaseModel]], problems: list[Problem]
) -> StepDefinition | None:
    if not isinstance(raw, dict):
        problems.append(
            Problem(at, f"expected an object (a step definition), got {json_type(raw)}")
        )
        return None
    found: list[Problem] = []
    model = _options_model(raw.get("type"), at, types, found)
    data = raw
    if "options" in raw:
        options = _check_options(raw["options"], model, at, found) if model else None
        data = {**raw, "options": options or _UNCHECKED}
    try:
        step = step_base(raw.get("type")).model_validate(data)
    except ValidationError as exc:
        found[:0] = from_validation_error(exc, at, StepDefinition)
        step = None
    problems.extend(found)
    return None if found else step


def _options_model(
    step_type: Any, at: str, types: Mapping[str, type[BaseModel]], found: list[Problem]
) -> type[BaseModel] | None:
    """The options model of ``step_type``; reports an unknown type (the step model the rest)."""
    if not isinstance(step_type, str) or not step_type:
        return None
    model = types.get(step_type)
    if model is None:
        hint = suggest(step_type, types)
        known = ", ".join(f'"{t}"' for t in sorted(types))
        message = f"unknown step type {show(step_type)}{hint}; known types: {known}"
        found.append(Problem(f"{at}/type", message))
    return model


def _check_options(
    raw: Any, model: type[BaseModel], at: str, found: list[Problem]
) -> BaseModel | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        found.extend(from_validation_error(exc, f"{at}/options", model))
    except Exception as exc:  # a plugin's validator must not take the validator down
        found.append(Problem(f"{at}/options", f"these options could not be checked: {exc}"))
    return None


# -- pass 3: the graph ------------------------------------------------------------------------


def _nodes(raw_steps: list[Any]) -> list[graph.Node]:
    nodes = []
    # Inlined type checks: this runs for every step of every flow loaded.
    for raw in raw_steps:
        if type(raw) is dict:
            step_id, on_success, on_error = (
                raw.get("stepDefinitionId"),
                raw.get("onSuccess"),
                raw.get("onError"),
            )
            branches = (
                graph.choice_branches(raw.get("options")) if raw.get("type") == CHOICE else ()
            )
            nodes.append(
                graph.Node(
                    step_id if type(step_id) is str and step_id else None,
                    on_success if type(on_success) is str else None,
                    on_error if type(on_error) is str else None,
                    branches,
                )
            )
        else:
            nodes.append(graph.Node(None, None, None))
    return nodes


def _check_graph(raw_steps: list[Any], base: str, problems: list[Problem]) -> list[graph.Node]:
    nodes = _nodes(raw_steps)
    ids = graph.index_ids(nodes)
    _check_duplicates(nodes, ids, base, problems)
    _check_references(nodes, ids, base, problems)
    adjacency = graph.edges(nodes, ids)
    _check_cycles(nodes, adjacency, base, problems)
    _check_reachable(nodes, adjacency, base, problems)
    return nodes


def _check_duplicates(
    nodes: list[graph.Node], ids: dict[str, int], base: str, problems: list[Problem]
) -> None:
    for i, node in enumerate(nodes):
        if node.step_id is not None and ids[node.step_id] != i:
            first = pointer(base, ids[node.step_id])
            message = f"duplicate stepDefinitionId {show(node.step_id)} (first used by {first})"
            problems.append(Problem(pointer(base, i, "stepDefinitionId"), message))


def _check_references(
    nodes: list[graph.Node], ids: dict[str, int], base: str, problems: list[Problem]
) -> None:
    suggested = 0
    for i, node in enumerate(nodes):
        if node.on_success is None and node.on_error is None and not node.branches:
            continue
        for key, target in node.targets():
            if target is None or (target in ids and target != node.step_id):
                continue
            if target == node.step_id:
                message = f"step {show(target)} points at itself; a step cannot follow itself"
            else:
                suggested += 1
                hint = suggest(target, ids) if suggested <= _MAX_SUGGESTED_REFERENCES else ""
                message = f"no step has stepDefinitionId {show(target)}{hint}"
            problems.append(Problem(pointer(base, i, *key.split("/")), message))


def _loop_text(path: tuple[str, ...]) -> str:
    if len(path) > _LONG_LOOP:
        hidden = len(path) - _LONG_LOOP
        path = (*path[: _LONG_LOOP // 2], f"... {hidden} more ...", *path[-_LONG_LOOP // 2 :])
    return " -> ".join(path)


def _check_cycles(
    nodes: list[graph.Node],
    adjacency: list[list[tuple[str, int]]],
    base: str,
    problems: list[Problem],
) -> None:
    cycles, total = graph.find_cycles(nodes, adjacency)
    for cycle in cycles:
        message = f"cycle: {_loop_text(cycle.path)}; an execution could run forever"
        at = pointer(base, cycle.index, *cycle.key.split("/"))
        problems.append(Problem(at, message))
    if total > len(cycles):
        problems.append(Problem(base, f"{total - len(cycles)} more cycles not listed"))


def _check_reachable(
    nodes: list[graph.Node],
    adjacency: list[list[tuple[str, int]]],
    base: str,
    problems: list[Problem],
) -> None:
    seen = graph.reachable(adjacency)
    first = show(nodes[0].step_id) if nodes[0].step_id else "at " + pointer(base, 0)
    for i, reached in enumerate(seen):
        if not reached:
            name = show(nodes[i].step_id) + " " if nodes[i].step_id else ""
            message = f"step {name}is never run: no onSuccess/onError path from the first step"
            problems.append(Problem(pointer(base, i), f"{message} {first} leads to it", "warning"))
