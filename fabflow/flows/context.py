"""Templates and choice expressions checked when a flow is validated.

Every string option holding ``{{`` or ``{%`` is compiled, and every name it reads is looked up
in the context its step will have: ``order`` (the order document), ``steps.<id>`` for the steps
that can have run before it on some path (with the keys their type produces), ``error`` on
steps an ``onError`` edge leads to, ``secrets.<name>``, ``step`` and ``flow``. A choice's
``when`` expressions are checked the same way. Each problem points at the option.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import jinja2

from fabflow.errors import Problem
from fabflow.flows import graph
from fabflow.flows.expressions import ExpressionError, parse
from fabflow.flows.model import CHOICE
from fabflow.flows.options import is_template
from fabflow.flows.problems import pointer, show, suggest
from fabflow.flows.references import (
    ANY,
    NUMBER,
    TEXT,
    Lazy,
    Obj,
    Reference,
    Seq,
    Shape,
    check,
    references,
    walk_strings,
)
from fabflow.flows.sandbox import SANDBOX

# The response headers a REST step keeps (lower-case names; the rest may carry cookies or
# tokens, and nothing needs them).
SAFE_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
)

_FILE = Obj(
    {
        **dict.fromkeys(
            ("name", "format", "contentType", "sha256", "line", "part", "url", "previewUrl"), TEXT
        ),
        **dict.fromkeys(("bytes", "triangles", "volumeMm3"), NUMBER),
        "bbox": Obj({"min": Seq(NUMBER), "max": Seq(NUMBER)}, "bbox"),
    },
    "a file record",
)
ORDER = Obj(
    {
        **dict.fromkeys(("id", "externalId", "flowId", "status", "createdAt", "updatedAt"), TEXT),
        "flowVersion": NUMBER,
        "statusHistory": Seq(Obj(dict.fromkeys(("status", "stepDefinitionId", "at"), TEXT))),
        "customer": Obj({"name": TEXT, "email": TEXT}, "the customer"),
        "lines": Seq(
            Obj(
                {"id": TEXT, "product": TEXT, "quantity": NUMBER, "parameters": ANY},
                "an order line",
            )
        ),
        "data": ANY,
        "files": Seq(_FILE),
        "stepData": ANY,
        "execution": ANY,
        "health": ANY,
    },
    "the order document",
)
_STEP = Obj({"id": TEXT, "type": TEXT, "successStatus": TEXT}, "step")
_FLOW = Obj({"id": TEXT, "name": TEXT, "version": NUMBER}, "flow")
_ERROR = Obj({"stepDefinitionId": TEXT, "type": TEXT, "message": TEXT}, "error")
_RESPONSE = Obj(
    {"status": NUMBER, "headers": Obj(dict.fromkeys(SAFE_HEADERS, TEXT), "headers"), "body": ANY},
    "response",
)
_CONFIRMATION = Obj(dict.fromkeys(("outcome", "by", "comment", "at"), TEXT), "confirmation")
_NO_ERROR = "error is set only on an error path, and no onError leads to this step"


def output_shape(step_type: object, options: object) -> Shape:
    """What ``steps.<id>`` holds for a step of ``step_type`` once it ran."""
    waits = isinstance(options, dict) and options.get("waitForCallback") is True
    if step_type == "consume-rest-api":
        fields: dict[str, Shape] = {"response": _RESPONSE}
        return Obj({**fields, "callback": ANY} if waits else fields, "a consume-rest-api step")
    if step_type == "generate-production-files":
        return Obj({"files": Seq(_FILE)}, "a generate-production-files step")
    if step_type == "manual-confirmation":
        return Obj({"confirmation": _CONFIRMATION}, "a manual-confirmation step")
    if step_type in ("send-email", CHOICE):
        return Obj({}, f"a {step_type} step keeps no output and")
    return ANY  # a plugin's step: its output is its own


class _Graph:
    """The flow's steps as the checks need them: who can run before whom, who is on an
    error path. Reach sets are worked out on demand and kept."""

    def __init__(self, raw_steps: list[Any], nodes: list[graph.Node], ids: dict[str, int]):
        self.raw_steps = raw_steps
        self.ids = ids
        self.adjacency = graph.edges(nodes, ids)
        self.from_first = graph.reachable(self.adjacency)
        self._reach: dict[int, list[bool]] = {}
        starts = [ids[n.on_error] for n in nodes if n.on_error in ids]
        self.on_error_path = _reachable_from(self.adjacency, starts)

    def runs_before(self, earlier: int, later: int) -> bool:
        """Whether a path from the first step runs ``earlier`` and then ``later``."""
        if earlier == later or not self.from_first[earlier]:
            return False
        reach = self._reach.get(earlier)
        if reach is None:
            reach = self._reach[earlier] = graph.reachable(self.adjacency, earlier)
        return reach[later]


def _reachable_from(adjacency: list[list[tuple[str, int]]], starts: list[int]) -> list[bool]:
    seen = [False] * len(adjacency)
    queue = deque(starts)
    for s in starts:
        seen[s] = True
    while queue:
        for _, target in adjacency[queue.popleft()]:
            if not seen[target]:
                seen[target] = True
                queue.append(target)
    return seen


class _StepsBefore(Lazy):
    """``steps`` as step ``index`` sees it."""

    def __init__(self, flow: _Graph, index: int) -> None:
        self.flow = flow
        self.index = index

    def child(self, token: object) -> Shape | str | None:
        if not isinstance(token, str):
            return None
        j = self.flow.ids.get(token)
        if j is None:
            hint = suggest(token, list(self.flow.ids)[:5000])
            return f"has no {show(token)}: no step has stepDefinitionId {show(token)}{hint}"
        if not self.flow.runs_before(j, self.index):
            return (
                f"has no {show(token)}: step {show(token)} cannot have run before this one"
                " (no path leads from it to here)"
            )
        raw = self.flow.raw_steps[j]
        return output_shape(raw.get("type"), raw.get("options"))


def _context(flow: _Graph, index: int, choice: bool = False) -> Obj:
    fields: dict[str, Shape] = {
        "order": ORDER,
        "steps": _StepsBefore(flow, index),
        "step": _STEP,
        "flow": _FLOW,
    }
    missing = {}
    if choice:  # routing on a secret's value would tell it to whoever sees the route taken
        missing["secrets"] = "a choice cannot read secrets"
    else:
        fields["secrets"] = ANY
    if flow.on_error_path[index]:
        fields["error"] = _ERROR
    else:
        missing["error"] = _NO_ERROR
    return Obj(fields, "the context", missing)


def check_templates(
    raw_steps: list[Any], base: str, nodes: list[graph.Node], problems: list[Problem]
) -> None:
    """Add a problem for every template or expression that does not compile or reads what
    its step's context cannot have."""
    flow = _Graph(raw_steps, nodes, graph.index_ids(nodes))
    # An option its own check refused already (a URI template not closed ...): once is enough.
    refused = {p.pointer for p in problems if p.severity == "error"}
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or not isinstance(raw.get("options"), dict):
            continue
        at = pointer(base, i, "options")
        if raw.get("type") == CHOICE:
            _check_choice(raw, at, flow, i, problems)
            continue
        for path, text in walk_strings(raw["options"]):
            where = pointer(at, *path)
            if is_template(text) and where not in refused:
                _check_template(text, where, flow, i, problems)


def _check_template(text: str, at: str, flow: _Graph, i: int, problems: list[Problem]) -> None:
    try:
        tree = SANDBOX.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        problems.append(Problem(at, f"template syntax error on line {exc.lineno}: {exc.message}"))
        return
    _check_references(references(tree), at, _context(flow, i), problems, "template reads ")


def _check_choice(
    raw: dict[str, Any], at: str, flow: _Graph, i: int, problems: list[Problem]
) -> None:
    if raw.get("onSuccess") is not None:
        message = "a choice goes on at its rules' next or at otherwise: onSuccess is not used here"
        problems.append(Problem(pointer(at.rsplit("/", 1)[0], "onSuccess"), message))
    rules = raw["options"].get("rules")
    for k, rule in enumerate(rules if isinstance(rules, list) else []):
        when = rule.get("when") if isinstance(rule, dict) else None
        if not isinstance(when, str):
            continue
        try:
            tree = parse(when)
        except ExpressionError:
            continue  # reported by the options' own check
        refs = references(tree)
        where = pointer(at, "rules", k, "when")
        _check_references(refs, where, _context(flow, i, choice=True), problems, "")


def _check_references(
    refs: list[Reference], at: str, context: Obj, problems: list[Problem], prefix: str
) -> None:
    seen: set[str] = set()
    for ref in refs:
        why = check(ref, context)
        if why is not None and why not in seen:
            seen.add(why)
            line = f" (line {ref.lineno})" if ref.lineno > 1 else ""
            problems.append(Problem(at, f"{prefix}{why}{line}"))


def shapes() -> Mapping[str, Shape]:
    """The fixed parts of the context, for tests and docs."""
    return {"order": ORDER, "step": _STEP, "flow": _FLOW, "error": _ERROR}
