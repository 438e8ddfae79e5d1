"""A flow's paths for people (``fabflow validate --explain``) and as data (for the web UI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fabflow.flows import graph
from fabflow.flows.model import CHOICE, Flow, StepDefinition

EdgeKind = Literal["success", "error", "choice"]


@dataclass(frozen=True)
class GraphNode:
    """A step as a box in a drawing."""

    id: str
    type: str
    success_status: str
    first: bool
    unreachable: bool


@dataclass(frozen=True)
class GraphEdge:
    """An arrow: where a step's success or error leads, or a choice's branch (``label`` is
    the rule's ``when``, or ``otherwise``)."""

    source: str
    target: str
    kind: EdgeKind
    label: str | None = None


@dataclass(frozen=True)
class FlowGraph:
    """The whole drawing of a flow."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"nodes": [...], "edges": [{"from", "to", "kind"}]}``."""
        nodes = [
            {
                "id": n.id,
                "type": n.type,
                "successStatus": n.success_status,  # camelCase, as in the flow format
                "first": n.first,
                "unreachable": n.unreachable,
            }
            for n in self.nodes
        ]
        edges = [
            {"from": e.source, "to": e.target, "kind": e.kind}
            | ({} if e.label is None else {"label": e.label})
            for e in self.edges
        ]
        return {"nodes": nodes, "edges": edges}


def branches(step: StepDefinition) -> list[tuple[str, str]]:
    """A choice's ``(label, target)`` in order: each rule's ``when``, then ``otherwise``."""
    if step.type != CHOICE:
        return []
    options: Any = step.options
    return [(r.when, r.next) for r in options.rules] + [("otherwise", options.otherwise)]


def _node(step: StepDefinition) -> graph.Node:
    extra = tuple((f"branch/{i}", t) for i, (_, t) in enumerate(branches(step)))
    return graph.Node(step.step_definition_id, step.on_success, step.on_error, extra)


def _reached(flow: Flow) -> list[bool]:
    nodes = [_node(s) for s in flow.steps]
    return graph.reachable(graph.edges(nodes, graph.index_ids(nodes)))


def flow_graph(flow: Flow) -> FlowGraph:
    """The flow as nodes and edges, with the steps no path reaches flagged."""
    reached = _reached(flow)
    nodes = tuple(
        GraphNode(s.step_definition_id, s.type, s.success_status or "", i == 0, not reached[i])
        for i, s in enumerate(flow.steps)
    )
    edges: list[GraphEdge] = []
    for s in flow.steps:
        for label, target in branches(s):
            edges.append(GraphEdge(s.step_definition_id, target, "choice", label))
        if s.on_success is not None:
            edges.append(GraphEdge(s.step_definition_id, s.on_success, "success"))
        if s.on_error is not None:
            edges.append(GraphEdge(s.step_definition_id, s.on_error, "error"))
    return FlowGraph(nodes, tuple(edges))


def success_path(flow: Flow, start: StepDefinition) -> list[str]:
    """The ids met from ``start`` while every step succeeds (stops at a repeat, just in case)."""
    path: list[str] = []
    step: StepDefinition | None = start
    while step is not None and step.step_definition_id not in path:
        path.append(step.step_definition_id)
        target = step.on_success
        step = flow.step(target) if target is not None and target in flow else None
    return path


def explain(flow: Flow) -> str:
    """A few lines an operator can read instead of drawing the flow."""
    lines = [
        f'Flow "{flow.name}": {len(flow.steps)} steps, starts at "{flow.first.step_definition_id}"'
    ]
    lines += ["", "When every step succeeds:", "  " + _path_text(flow, flow.first)]
    lines += ["", "When a step fails (after its retries):"]
    width = max(len(s.step_definition_id) for s in flow.steps)
    for step in flow.steps:
        lines.append(f"  {step.step_definition_id:<{width}}  {_error_text(flow, step)}")
    choices = [s for s in flow.steps if s.type == CHOICE]
    if choices:
        lines += ["", "Choices (rules tried in order, the first true one wins):"]
        for choice in choices:
            lines.append(f"  {choice.step_definition_id}:")
            for label, target in branches(choice):
                when = label if label == "otherwise" else f"when {label}"
                lines.append(f"    {when} -> " + _path_text(flow, flow.step(target)))
    unreachable = [n.id for n in flow_graph(flow).nodes if n.unreachable]
    if unreachable:
        lines += ["", "Never run (no path from the first step):", "  " + ", ".join(unreachable)]
    return "\n".join(lines)


def _path_text(flow: Flow, start: StepDefinition) -> str:
    path = success_path(flow, start)
    last = flow.step(path[-1])
    if last.type == CHOICE:
        return " -> ".join(path) + " (choice: see below)"
    return " -> ".join(path) + (" (end)" if last.on_success is None else " (loops)")


def _error_text(flow: Flow, step: StepDefinition) -> str:
    if step.on_error is None or step.on_error not in flow:
        if step.type == CHOICE:
            return "an expression fails: the execution ends, failed"
        return "fails: the execution ends, failed"
    return "fails -> " + _path_text(flow, flow.step(step.on_error))
