"""API keys at the HTTP edge: ``Authorization: Bearer <key>`` names the tenant of a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fabflow.api.errors import Unauthorized
from fabflow.store.repository import Store

MAX_KEY_LENGTH = 200

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key of your tenant: `fabflow apikey create --tenant NAME` prints one.",
)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def tenant_id(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The tenant of the request's key; 401 without a valid, unrevoked key."""
    if credentials is None:
        raise Unauthorized("this route needs the header 'Authorization: Bearer <api key>'")
    secret = credentials.credentials
    found = None if len(secret) > MAX_KEY_LENGTH else get_store(request).authenticate(secret)
    if found is None:
        raise Unauthorized("the API key is unknown or revoked")
    return found


Tenant = Annotated[str, Depends(tenant_id)]
StoreDep = Annotated[Store, Depends(get_store)]
