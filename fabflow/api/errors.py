"""One error body for every failure, and the one place that picks HTTP statuses.

Every error answer is ``{"code", "message", "problems": [{"pointer", "message", "severity"}]}``.
fabflow's own errors carry their ``code``; the errors below exist only at the HTTP edge. The
store's errors that bad input causes (a value a column cannot hold, a unique value taken) are
the caller's, in one table (``_INPUT_ERRORS``): 4xx, never 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fabflow.errors import (
    Conflict,
    ErrorTable,
    FabflowError,
    InvalidInput,
    NotFound,
    Problem,
    StoreError,
    translate,
)

log = logging.getLogger(__name__)


class Unauthorized(FabflowError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"


class BadRequest(FabflowError):
    """A request HTTP cannot make sense of (malformed JSON)."""

    code = "bad_request"


class Forbidden(FabflowError):
    """A credential that is not an API key (a signed link) and does not allow the request."""

    code = "forbidden"


class PayloadTooLarge(FabflowError):
    code = "payload_too_large"


class TooManyRequests(FabflowError):
    """A caller sent more requests than its limit allows; it may try again later."""

    code = "too_many_requests"


# The one table of statuses: the most specific class listed first wins.
_STATUSES: tuple[tuple[type[FabflowError], int], ...] = (
    (Unauthorized, 401),
    (BadRequest, 400),
    (Forbidden, 403),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (StoreError, 503),
)
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(error: FabflowError) -> int:
    """The HTTP status of a fabflow error (500 for anything not meant for the caller)."""
    for cls, status in _STATUSES:
        if isinstance(error, cls):
            return status
    return 500


def body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "problems": [p.as_dict() for p in problems or []]}


def error_response(status: int, payload: dict[str, Any], **headers: str) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers or None,
    )


def fabflow_error_response(error: FabflowError) -> Response:
    status = status_of(error)
    if status >= 500:
        log.error("request failed: %s", error)
    message = error.message if status < 500 else "the server failed; see its log"
    problems = error.problems if isinstance(error, InvalidInput) else None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return error_response(status, body(error.code, message, problems), **headers)


def _pointer(loc: tuple[Any, ...]) -> str:
    """A JSON Pointer into the body, or ``query.name`` (``path.``, ``header.``) elsewhere."""
    where, *rest = [str(p) for p in loc] or ["body"]
    if where != "body":
        return f"{where}.{'.'.join(rest)}"
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in rest)


NUL = "contains a NUL character (\\u0000)"


def _nul_problems(path: str, query: str) -> list[Problem]:
    """NUL in the path or a query value: no text fabflow stores or looks up may hold one
    (PostgreSQL refuses it), so it is refused here alike on every database."""
    problems = [Problem("path", f"the path {NUL}")] if "\x00" in path else []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            problems.append(Problem(f"query.{name.replace(chr(0), '')}", f"the value {NUL}"))
    return problems


class RefuseNul:
    """A pure ASGI middleware: 422 for a request whose path or query holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            problems = _nul_problems(scope.get("path", ""), query)
            if problems:
                error = InvalidInput(f"invalid request: {problems[0].pointer}: {NUL}", problems)
                await fabflow_error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _first_line(exc: StatementError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__


def _taken(exc: StatementError, _request: Request) -> FabflowError:
    return Conflict(f"the request conflicts with what is stored: {_first_line(exc)}")


def _unstorable(exc: StatementError, _request: Request) -> FabflowError:
    message = f"a value the database cannot store: {_first_line(exc)}"
    return InvalidInput(f"invalid request: {message}", [Problem("", message)])


# The store's errors that the request's input caused, as the caller's: the one table.
_INPUT_ERRORS: ErrorTable[Request, FabflowError] = {
    IntegrityError: _taken,  # a unique value taken meanwhile, a row referred to gone: 409
    DataError: _unstorable,  # a value its column cannot hold (NUL, out of range, too long): 422
}


def input_error(exc: StatementError, request: Request) -> FabflowError | None:
    """The caller's error for a store error its input caused; None for the server's own.
    A value the store's JSON codec cannot encode is the input's too (a huge integer)."""
    found = translate(exc, _INPUT_ERRORS, request)
    encoding = type(exc) is StatementError and isinstance(exc.orig, (TypeError, ValueError))
    return _unstorable(exc, request) if found is None and encoding else found


def _validation_response(exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        message = f"malformed JSON: {detail.get('ctx', {}).get('error', 'cannot decode')}"
        return fabflow_error_response(BadRequest(message))
    problems = [Problem(_pointer(tuple(e.get("loc", ()))), str(e.get("msg", ""))) for e in errors]
    first = problems[0] if problems else Problem("", "invalid request")
    return fabflow_error_response(
        InvalidInput(f"invalid request: {first.pointer}: {first.message}", problems)
    )


def _http_response(exc: StarletteHTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return error_response(exc.status_code, body(code, message), **(exc.headers or {}))


def install(app: FastAPI) -> None:
    """Route every error, ours or the framework's, to the one body; refuse NUL in paths and
    queries before any route sees them."""

    async def on_fabflow(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FabflowError)
        return fabflow_error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(exc)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _http_response(exc)

    async def on_database(request: Request, exc: Exception) -> Response:
        # The database is down or restarting: the request can be sent again (orders with an
        # externalId are never created twice).
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        message = "the database is unavailable right now; retry shortly"
        return error_response(503, body("store_unavailable", message), **{"Retry-After": "1"})

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, body("internal", "the server failed; see its log"))

    async def on_store_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StatementError)
        error = input_error(exc, request)
        if error is None:
            return await on_unexpected(request, exc)
        log.warning("refused on %s %s: %s", request.method, request.url.path, error.message)
        return fabflow_error_response(error)

    app.add_exception_handler(FabflowError, on_fabflow)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database)
    app.add_exception_handler(StatementError, on_store_input)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(RefuseNul)
