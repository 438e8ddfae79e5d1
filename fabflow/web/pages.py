"""The web UI's pages: small server-rendered shells whose scripts read the JSON API.

Every page but sign-in needs a session; without one the browser is sent to sign in and back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fabflow import __version__
from fabflow.api.auth import key_tenant
from fabflow.errors import NotFound
from fabflow.store import orders
from fabflow.store.repository import Store
from fabflow.web import auth
from fabflow.web.sessions import COOKIE, same_token

router = APIRouter(include_in_schema=False)
_env = Environment(loader=PackageLoader("fabflow.web", "templates"), autoescape=select_autoescape())
# No inline script or style anywhere, so the policy can forbid them (XSS stays inert).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_KEY = 200
Token = Annotated[str, Form(max_length=100)]


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(version=__version__, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _page(
    request: Request,
    name: str,
    page: str,
    exists: Callable[[Store, str], object] | None = None,
    **context: Any,
) -> Response:
    """A page for the signed-in tenant; ``exists`` (store, tenant id) raises NotFound when
    what the page shows is not the tenant's: then a 404 page says so."""
    session = auth.current_session(request)
    if session is None:
        return auth.to_signin(request)
    if key_tenant(request, session.api_key) is None:  # its key was revoked: the session ends
        auth.sessions_of(request).close(request.cookies.get(COOKIE))
        return auth.to_signin(request)
    tenant = _tenant_name(request, session.tenant)
    if exists is not None:
        try:
            exists(request.app.state.store, session.tenant)
        except NotFound as exc:
            return render(
                "notfound.html", 404, page=page, csrf=session.csrf, tenant=tenant, what=exc.message
            )
    return render(name, page=page, csrf=session.csrf, tenant=tenant, **context)


def not_found_page(request: Request) -> Response:
    """The HTML 404 of a page path no route serves (the API's paths keep their JSON)."""
    session = auth.current_session(request)
    what = f"No page is at {request.url.path}."
    if session is None:
        return render("notfound.html", 404, page="", what=what)
    tenant = _tenant_name(request, session.tenant)
    return render("notfound.html", 404, page="", csrf=session.csrf, tenant=tenant, what=what)


_TENANT_NAMES: dict[str, str] = {}  # a tenant's name never changes


def _tenant_name(request: Request, tenant_id: str) -> str:
    """The tenant's name, as operators know it (the header showed its id)."""
    name = _TENANT_NAMES.get(tenant_id)
    if name is None:
        store: Store = request.app.state.store
        name = _TENANT_NAMES[tenant_id] = store.tenant_name(tenant_id)
    return name


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/orders", status_code=303)


@router.get("/signin")
def signin_form(
    request: Request, next_: Annotated[str | None, Query(alias="next", max_length=500)] = None
) -> Response:
    return _signin_page(request, next_, None, 200)


def _signin_page(request: Request, next_: str | None, error: str | None, status: int) -> Response:
    token = auth.new_signin_token()
    target = auth.safe_next(next_)
    response = render("signin.html", status, page="signin", next=target, error=error, token=token)
    auth.set_signin_cookie(request, response, token)
    return response


@router.post("/signin")
async def signin(
    request: Request,
    key: Annotated[str, Form(max_length=MAX_KEY)] = "",
    token: Token = "",
    next_: Annotated[str, Form(alias="next", max_length=500)] = "/orders",
) -> Response:
    """Open a session for a valid API key; the key itself never reaches the browser again."""
    if not same_token(request.cookies.get(auth.SIGNIN_COOKIE), token):
        return _signin_page(request, next_, "The form expired: please sign in again.", 403)
    store: Store = request.app.state.store
    tenant = await run_in_threadpool(store.authenticate, key.strip()) if key.strip() else None
    if tenant is None:
        return _signin_page(request, next_, "That API key is unknown or revoked.", 401)
    sessions = auth.sessions_of(request)
    # A new id at each sign-in: no fixation.
    await run_in_threadpool(sessions.close, request.cookies.get(COOKIE))
    session_id, _ = await run_in_threadpool(sessions.open, tenant, key.strip())
    response = RedirectResponse(auth.safe_next(next_), status_code=303)
    auth.set_session_cookie(response, request, session_id)
    response.delete_cookie(auth.SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(request: Request, csrf: Token = "") -> Response:
    session = auth.current_session(request)
    if session is not None and not same_token(csrf, session.csrf):
        return _signin_page(request, None, "Sign-out refused: reload the page and try again.", 403)
    auth.sessions_of(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/orders")
def orders_page(request: Request) -> Response:
    return _page(request, "orders.html", "orders")


@router.get("/orders/{order_id}")
def order_page(request: Request, order_id: Annotated[str, Path(max_length=40)]) -> Response:
    return _page(
        request,
        "order.html",
        "order",
        lambda store, tenant: orders.get_order_row(store, tenant, order_id),
        order_id=order_id,
    )


@router.get("/flows")
def flows_page(request: Request) -> Response:
    return _page(request, "flows.html", "flows")


@router.get("/flows/new")
def new_flow_page(request: Request) -> Response:
    return _page(request, "flow.html", "flow", flow_id="")


@router.get("/flows/{flow_id}")
def flow_page(request: Request, flow_id: Annotated[str, Path(max_length=100)]) -> Response:
    return _page(
        request,
        "flow.html",
        "flow",
        lambda store, tenant: store.get_flow(tenant, flow_id),
        flow_id=flow_id,
    )


@router.get("/products")
def products_page(request: Request) -> Response:
    return _page(request, "products.html", "products")


@router.get("/secrets")
def secrets_page(request: Request) -> Response:
    return _page(request, "secrets.html", "secrets")


@router.get("/webhooks")
def webhooks_page(request: Request) -> Response:
    return _page(request, "webhooks.html", "webhooks")


@router.get("/activity")
def activity_page(request: Request) -> Response:
    return _page(request, "activity.html", "activity")
