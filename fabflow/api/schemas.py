"""What the OpenAPI document says about bodies, and the fast JSON responses the routes return.

Routes read bodies as plain JSON and check them with fabflow's own validators (every problem,
with pointers); the schemas here only describe them in the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from fabflow.flows.model import MAX_FLOW_DEADLINE_MS
from fabflow.order_input import OrderInput

REF = "#/components/schemas/{model}"


class ProblemBody(BaseModel):
    pointer: str = Field(description="JSON Pointer into the body, or query.NAME for a parameter.")
    message: str
    severity: str = "error"


class ErrorBody(BaseModel):
    """The body of every error answer."""

    code: str = Field(description="Stable, machine-readable: not_found, invalid_order, ...")
    message: str
    problems: list[ProblemBody] = Field(default_factory=list)


class RerunBody(BaseModel):
    """Where to run the order's flow again from, and what to fix first: the flow version
    (a number, or "latest") and a JSON merge patch (RFC 7386) on the order's ``data``.
    Unknown keys are refused (422), so a field this server does not know is never silently
    ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    step_definition_id: str = Field(alias="stepDefinitionId", min_length=1, max_length=200)
    flow_version: Annotated[int, Field(ge=1)] | Literal["latest"] | None = Field(
        default=None, alias="flowVersion"
    )
    data: dict[str, Any] | None = Field(default=None, max_length=100)


_STEP = {"type": "object", "description": "A step definition (see docs/flow-format.md)."}
FLOW_BODY: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["steps"],
            "properties": {
                "id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "description": {"type": "string", "maxLength": 10000},
                "deadline": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_FLOW_DEADLINE_MS,
                    "description": "Milliseconds from an order's creation: past it, an order "
                    "that has not ended is unhealthy.",
                },
                "steps": {"type": "array", "items": _STEP, "minItems": 1},
            },
        },
        {"type": "array", "items": _STEP, "minItems": 1, "description": "The spec's list form."},
    ]
}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


ORDER_BODY = json_body({"$ref": REF.format(model="OrderInput")})

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Malformed JSON",
        401: "No API key, or an unknown or revoked one",
        404: "Not found (or another tenant's)",
        409: "The object's state does not allow it",
        413: "Body too large",
        422: "Invalid input, with every problem",
    }.items()
}


def extra_components() -> dict[str, Any]:
    """Schemas the routes reference by hand (bodies they read themselves)."""
    schema = OrderInput.model_json_schema(by_alias=True, ref_template=REF)
    defs = schema.pop("$defs", {})
    return {"OrderInput": schema, **defs}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON of plain data, without FastAPI's encoder pass (our resources are JSON-ready)."""
    content = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)
