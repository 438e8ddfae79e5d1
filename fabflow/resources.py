"""The order resource of DESIGN section 5, built from rows: what the API returns and what the
consume-rest-api step POSTs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlencode

from fabflow.tokens import file_link_signature

# An order's status before any step succeeded (the column stays empty: no step set it).
CREATED_STATUS = "Created"

_SECONDS: dict[int, str] = {}  # whole UNIX seconds, formatted: rows share a few seconds
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))  # the fraction and zone, made once


def iso(ts: float | None) -> str | None:
    """UNIX seconds as an ISO 8601 UTC timestamp with milliseconds (``...T12:00:00.123Z``)."""
    if ts is None:
        return None
    # This runs for every timestamp of every order resource built, and the rows of a batch
    # fall within a few seconds: each whole second is formatted once (strftime on gmtime).
    ms = int(ts * 1000)
    whole = ms // 1000
    seconds = _SECONDS.get(whole)
    if seconds is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        seconds = _SECONDS[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return seconds + _MILLIS[ms - whole * 1000]


# The columns each part of the resource reads (see ``orders.load_resources``).
ATTEMPT_COLUMNS = (
    "id",
    "step_id",
    "step_type",
    "visit",
    "attempt",
    "state",
    "run_after",
    "started_at",
    "ended_at",
    "duration_ms",
    "worker_id",
    "claims",
    "error_type",
    "error_message",
    "details",
    "wait_until",
    "wait_kind",
    "resolution",
)
ORDER_COLUMNS = (
    "id",
    "tenant_id",  # the signed file links'
    "external_id",
    "status",
    "customer",
    "lines",
    "data",
    "files",
    "step_data",
    "created_at",
    "updated_at",
)
RESOURCE_EXECUTION_COLUMNS = (
    "id",
    "flow_version",
    "state",
    "current_step",
    "last_error",
    "ended_at",
    "outputs",
)
HISTORY_COLUMNS = ("status", "step_id", "at")


def attempt_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    error = None
    if row["error_type"] is not None:
        error = {"type": row["error_type"], "message": row["error_message"] or ""}
    return {
        "id": row["id"],
        "stepDefinitionId": row["step_id"],
        "type": row["step_type"],
        "visit": row["visit"],
        "attempt": row["attempt"],
        "outcome": row["state"],
        "scheduledAt": iso(row["run_after"]),
        "startedAt": iso(row["started_at"]),
        "endedAt": iso(row["ended_at"]),
        "durationMs": None if row["duration_ms"] is None else round(row["duration_ms"], 3),
        "worker": row["worker_id"],
        "claims": row["claims"],  # more than 1: taken over after a lease expired
        "error": error,
        "details": row["details"] or {},
        "wait": _wait(row),
    }


def _wait(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """What the attempt waits (or waited) on, until when, and how it was resolved."""
    if row["wait_kind"] is None:
        return None
    resolution = row["resolution"]
    if resolution is not None and isinstance(resolution.get("at"), int | float):
        resolution = {**resolution, "at": iso(resolution["at"])}  # as every time shown
    return {"kind": row["wait_kind"], "until": iso(row["wait_until"]), "resolution": resolution}


@dataclass(frozen=True, slots=True)
class FileLinks:
    """How a file record's ``url`` is made: a link that works without an API key until
    ``now + seconds``, signed with the installation's key (see ``fabflow.tokens``)."""

    secret: str
    seconds: int
    now: float

    def query(self, tenant_id: str, order_id: str, name: str) -> str:
        expires = int(self.now) + self.seconds
        signature = file_link_signature(self.secret, tenant_id, f"{order_id}/{name}", expires)
        return urlencode({"tenant": tenant_id, "expires": expires, "signature": signature})


def file_resource(
    record: Mapping[Any, Any],
    order_id: str,
    public_url: str,
    links: FileLinks | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """A file record as the API shows it. With ``links`` and ``tenant_id``, its ``url`` is a
    signed link (``/api/files/...``); without, the API-key route's."""
    out = {k: v for k, v in record.items() if k not in ("key", "preview")}
    root, name = public_url.rstrip("/"), quote(record["name"], safe="")
    base = f"{root}/api/orders/{order_id}/files/{name}"
    out["url"] = base
    if links is not None and tenant_id is not None:
        out["url"] = f"{root}/api/files/{order_id}/{name}?" + links.query(
            tenant_id, order_id, record["name"]
        )
    if record.get("preview"):
        out["previewUrl"] = base + "/preview"
    return out


def steps_view(
    outputs: Mapping[str, Any] | None, files: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The execution's step outputs as templates and the API show them (``steps.<id>``): a
    step's ``files`` are the file records as the order's ``files`` show them (``files``)."""
    if not outputs:
        return {}
    shown: dict[str, Mapping[str, Any]] | None = None
    view: dict[str, Any] = {}
    for step_id, output in outputs.items():
        made = output.get("files") if isinstance(output, dict) else None
        if made:
            if shown is None:
                shown = {f["name"]: f for f in files}
            output = {**output, "files": [_shown_file(r, shown) for r in made]}
        view[step_id] = output
    return view


def _shown_file(record: Mapping[str, Any], shown: Mapping[str, Mapping[str, Any]]) -> Any:
    found = shown.get(record.get("name", ""))
    return (
        found
        if found is not None
        else {k: v for k, v in record.items() if k not in ("key", "preview")}
    )


def order_resource(
    order: Mapping[Any, Any],
    execution: Mapping[Any, Any],
    attempts: Iterable[Mapping[Any, Any]],
    history: Iterable[Mapping[Any, Any]],
    flow: Mapping[Any, Any],
    public_url: str,
    health: dict[str, Any],
    links: FileLinks | None = None,
) -> dict[str, Any]:
    """The order resource. ``flow`` is ``{"id", "name", "version"}``; ``health`` is
    ``{"state", "reason", "nextAttemptAt"}`` (see ``fabflow.lifecycle.health``); ``links``
    signs the files' URLs."""
    status = order["status"]
    tenant_id = order.get("tenant_id")
    files = [
        file_resource(f, order["id"], public_url, links, tenant_id) for f in order["files"] or []
    ]
    return {
        "id": order["id"],
        "externalId": order["external_id"],
        "flowId": flow["id"],
        "flowVersion": execution["flow_version"],
        "status": CREATED_STATUS if status is None else status,
        "statusHistory": [
            {"status": h["status"], "stepDefinitionId": h["step_id"], "at": iso(h["at"])}
            for h in history
        ],
        "customer": order["customer"],
        "lines": order["lines"],
        "data": order["data"],
        "files": files,
        "stepData": order["step_data"] or {},
        "steps": steps_view(execution.get("outputs"), files),
        "execution": {
            "id": execution["id"],
            "state": execution["state"],
            "currentStep": execution["current_step"],
            "lastError": execution["last_error"],
            "attempts": [attempt_resource(a) for a in attempts],
            "endedAt": iso(execution["ended_at"]),
        },
        "health": health,
        "createdAt": iso(order["created_at"]),
        "updatedAt": iso(order["updated_at"]),
    }


# A step's state in the run, from its latest attempt (``queued`` after a failed attempt is a
# retry waiting out its backoff).
_STEP_STATES = {
    "success": "succeeded",
    "error": "failed",
    "timeout": "failed",
    "running": "running",
    "waiting": "waiting",
    "cancelled": "cancelled",
}
NOT_REACHED = "not_reached"


def run_view(
    definition: Sequence[Mapping[str, Any]], attempts: Sequence[Mapping[Any, Any]]
) -> dict[str, Any]:
    """The order's run drawn on its flow version: each step's state and attempt count, and
    the edges the execution took (in the order first taken), across retries and reruns."""
    steps = {s["stepDefinitionId"]: s for s in definition}
    latest: dict[str, Mapping[Any, Any]] = {}
    counts: dict[str, int] = {}
    for a in attempts:
        latest[a["step_id"]] = a
        counts[a["step_id"]] = counts.get(a["step_id"], 0) + 1
    shown = [
        {
            "stepDefinitionId": sid,
            "state": _step_state(latest.get(sid)),
            "attempts": counts.get(sid, 0),
        }
        for sid in steps
    ]
    return {"steps": shown, "path": _path(steps, attempts)}


def _step_state(attempt: Mapping[Any, Any] | None) -> str:
    if attempt is None:
        return NOT_REACHED
    if attempt["state"] == "queued":
        return "retrying" if attempt["attempt"] > 1 else "queued"
    return _STEP_STATES.get(attempt["state"], str(attempt["state"]))


def _path(
    steps: Mapping[str, Mapping[str, Any]], attempts: Sequence[Mapping[Any, Any]]
) -> list[dict[str, str]]:
    """The edges between attempts of consecutive visits that the flow version has; an
    operator's restart (a jump no edge makes) draws none."""
    taken: dict[tuple[str, str, str], None] = {}
    for before, after in pairwise(attempts):
        step = steps.get(before["step_id"])
        if step is None or before["visit"] == after["visit"]:
            continue
        kind = _edge_kind(step, before, after["step_id"])
        if kind is not None:
            taken.setdefault((before["step_id"], after["step_id"], kind))
    return [{"from": src, "to": dst, "kind": kind} for src, dst, kind in taken]


def _edge_kind(step: Mapping[str, Any], attempt: Mapping[Any, Any], target: str) -> str | None:
    """Which of ``step``'s edges leads to ``target`` after ``attempt`` ended as it did."""
    state = attempt["state"]
    if state in ("error", "timeout"):
        return "error" if step.get("onError") == target else None
    if state != "success":
        return None
    routed = (attempt["details"] or {}).get("next")
    if step.get("type") == "choice":
        return "choice" if routed == target else None
    return "success" if step.get("onSuccess") == target else None
