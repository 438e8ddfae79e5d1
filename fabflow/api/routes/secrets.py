"""A tenant's secrets: set, list (names and times, never values), delete.

Templates read them as ``secrets.NAME`` (a bearer token in a REST step's header, say). A value
goes in and never comes out: no route answers with one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from fabflow.api.auth import Actor, StoreDep, Tenant
from fabflow.api.schemas import ERRORS, json_response
from fabflow.store import secrets

router = APIRouter(prefix="/api/secrets", tags=["secrets"], responses=ERRORS)

SecretName = Annotated[
    str,
    Path(
        max_length=100,
        pattern=f"^{secrets.NAME.pattern}$",
        description="The secret's name, as templates read it: secrets.NAME.",
    ),
]


class SecretValue(BaseModel):
    """A secret's new value; stored encrypted and never shown again."""

    model_config = ConfigDict(extra="forbid", strict=True)

    value: str = Field(min_length=1, max_length=secrets.MAX_VALUE_CHARS, description="The value.")


class SecretListing(BaseModel):
    """A secret as listed: its name and times, never its value."""

    name: str
    createdAt: str
    updatedAt: str


class SecretList(BaseModel):
    secrets: list[SecretListing]


@router.put("/{name}", response_model=SecretListing, responses={201: {"model": SecretListing}})
def set_secret(
    request: Request,
    store: StoreDep,
    tenant: Tenant,
    by: Actor,
    name: SecretName,
    body: Annotated[SecretValue, Body()],
) -> Response:
    """Set a secret (201 when new, 200 when replaced). The answer holds no value."""
    keys = _keys(request)
    listing, created = secrets.set_secret(store, tenant, name, body.value, keys, by)
    return json_response(listing, 201 if created else 200)


def _keys(request: Request) -> str:
    """FABFLOW_SECRET_KEY, else the data folder's key file (made on first use, as ``fabflow
    serve`` does): an app built without a key still stores secrets its workers can read."""
    state = request.app.state
    if getattr(state, "secret_keys", None) is None:
        state.secret_keys = secrets.with_key(state.store.settings).secret_key
    keys: str = state.secret_keys
    return keys


@router.get("", response_model=SecretList)
def list_secrets(store: StoreDep, tenant: Tenant) -> Response:
    """The tenant's secrets by name, with when each was set; never their values."""
    return json_response({"secrets": secrets.list_secrets(store, tenant)})


@router.delete("/{name}", status_code=204)
def delete_secret(store: StoreDep, tenant: Tenant, by: Actor, name: SecretName) -> Response:
    """Delete a secret: steps that read it fail with a template error from now on."""
    secrets.delete_secret(store, tenant, name, by)
    return Response(status_code=204)
