"""consume-rest-api: send the order resource (or the step's ``body``) as JSON to a URL
(DESIGN section 3.1).

Templates in the ``body`` strings, the ``uri`` query values and the ``headers`` values are
rendered per attempt with the step's template context; the scheme, host and path of the URI
are literal (checked by the options model), so a rendered URL cannot point elsewhere.

One aiohttp session per executor (so per worker process), with keep-alive pooling. Its
connector resolves names through ``PolicyResolver``, so the outbound policy is checked on the
address actually connected to. Redirects are never followed, cookies never kept, proxy
environment variables never read (a proxy would connect on our behalf, past the policy).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from yarl import URL

import fabflow
from fabflow.errors import ErrorTable, PermanentStepError, StepError, TransientStepError, translate
from fabflow.flows.options import ConsumeRestApiOptions, is_template, parse_uri_template
from fabflow.steps import signing
from fabflow.steps.base import StepContext, StepExecutor, StepResult, Wait, within_deadline
from fabflow.steps.outbound import OutboundPolicy, OutboundRefused, PolicyResolver, literal_ip
from fabflow.steps.outputs import MAX_BODY_BYTES, response_output
from fabflow.steps.templates import has_statements, render
from fabflow.tokens import make_callback_token

if TYPE_CHECKING:
    from fabflow.settings import Settings

log = logging.getLogger(__name__)

EXCERPT_BYTES = 4096
CALLBACK_HEADER = "Fabflow-Callback"  # the callback token, also in the body's updateUrl
# Headers fabflow sets itself; a flow's ``headers`` option cannot replace them.
PROTECTED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Idempotency-Key",
        "Content-Type",
        signing.HEADER,
        CALLBACK_HEADER,
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
    )
)
TRANSIENT_STATUSES = frozenset({408, 429})
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what a header value must not hold (tab may)


def callback_token(ctx: StepContext) -> str:
    """The callback token of this step visit: its idempotency key and a 256-bit signature of
    it, the same for every attempt of the visit (a worker that dies after the POST re-sends
    the same updateUrl, which the receiver may already hold), different for every visit, and
    impossible to make without the installation's key. Random when no key is given (an
    executor called outside a worker)."""
    secret = ctx.settings.callback_secret
    if not secret:
        return secrets.token_urlsafe(32)
    return make_callback_token(secret, ctx.idempotency_key)


class RestStep(StepExecutor):
    """POSTs (or PUT/PATCHes) the order resource as JSON; 2xx is success."""

    type_name = "consume-rest-api"
    options_model = ConsumeRestApiOptions

    def __init__(self, settings: Settings, *, resolver: AbstractResolver | None = None) -> None:
        """``resolver`` replaces system name resolution; the outbound policy still applies."""
        super().__init__(settings)
        self.policy = OutboundPolicy.from_allow(settings.outbound_allow)
        self._inner_resolver = resolver
        self._checked: dict[str, URL] = {}  # URIs that passed _check_url (the policy is fixed)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the shared session (one connection pool for every attempt of this process)."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            resolver=PolicyResolver(self.policy, self._inner_resolver),
            limit=max(100, self.settings.concurrency * 4),
            limit_per_host=0,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # orders of one tenant must not see another's
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),  # the step's deadline governs instead
            auto_decompress=True,
        )

    async def close(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def execute(self, ctx: StepContext) -> StepResult:
        """Send one request; map the outcome to a result or a step error."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        options: ConsumeRestApiOptions = ctx.options
        token = callback_token(ctx) if options.wait_for_callback else None
        if _has_statements(options):  # template loops: rendered off the event loop
            request = await asyncio.to_thread(self._request, ctx, options, token)
        else:
            request = self._request(ctx, options, token)
        url, shown, body, headers, ignored = request
        if token is not None:
            headers[CALLBACK_HEADER] = token
        started = time.perf_counter()
        sending = self._send(self._session, options.method, url, headers, body)
        try:
            status, resp_headers, excerpt = await within_deadline(ctx, sending)
        except StepError:
            raise
        except Exception as exc:  # CancelledError passes: the worker is stopping us
            error = rest_error(exc, RestCall(shown, ctx.timeout_s, started))
            if error is None:
                raise
            raise error from exc
        details = _details(status, started, excerpt)
        if ignored:
            details["ignoredHeaders"] = ignored
        if 200 <= status < 300:
            wait = None if token is None else Wait("callback", token)
            output = response_output(status, resp_headers, excerpt)
            return StepResult(details=details, wait=wait, output=output)
        _raise_for_status(status, resp_headers, shown, details)

    def _request(
        self, ctx: StepContext, options: ConsumeRestApiOptions, token: str | None
    ) -> tuple[URL, URL, bytes, CIMultiDict[str], list[str]]:
        """The URL (and the one errors show), the body and the headers, rendered."""
        url, shown = self._url(ctx, options.uri)
        body = orjson.dumps(self._body(ctx, options, token))  # compact UTF-8, what is signed
        headers, ignored = self._headers(ctx, options.headers, body)
        return url, shown, body, headers, ignored

    def _body(self, ctx: StepContext, options: ConsumeRestApiOptions, token: str | None) -> Any:
        """The step's ``body`` rendered; without one, the order resource, with a callback
        and where to send it (its token, 128+ random bits, is the receiver's only credential,
        valid for this one wait)."""
        if options.body is not None:
            return render_json(options.body, ctx.template_context, "body")
        if token is None:
            return ctx.order
        base = self.settings.public_url.rstrip("/")
        return {**ctx.order, "updateUrl": f"{base}/api/callbacks/{token}"}

    def _url(self, ctx: StepContext, uri: str) -> tuple[URL, URL]:
        """The URL to send to, and the URL error messages show: the same for a literal URI;
        for a templated one, without its query (rendered values may hold secrets)."""
        if not is_template(uri):
            url = self._checked_url(uri)
            return url, url
        template = parse_uri_template(uri)
        base = self._checked_url(template.base)  # the host is literal: checked once
        query = render_query(template.query, ctx.template_context)
        rendered = URL(f"{base}?{query}{template.fragment}")
        return rendered, base

    def _checked_url(self, uri: str) -> URL:
        url = self._checked.get(uri)
        if url is None:
            url = self._check_url(uri)
            if len(self._checked) > 4096:  # flows use a few URLs; bound it all the same
                self._checked.clear()
            self._checked[uri] = url
        return url

    def _check_url(self, uri: str) -> URL:
        url = URL(uri)
        if url.scheme not in ("http", "https") or not url.host:
            raise PermanentStepError(
                f"uri must be an absolute http or https URL, not {uri!r}", error_type="options"
            )
        address = literal_ip(url.host)
        if address is not None:
            # aiohttp skips the resolver for literal IPs, so the same policy is applied here.
            self.policy.check(url.host, address)
        return url

    def _headers(
        self, ctx: StepContext, extra: Mapping[str, str], body: bytes
    ) -> tuple[CIMultiDict[str], list[str]]:
        headers: CIMultiDict[str] = CIMultiDict()
        ignored: list[str] = []
        for name, value in extra.items():
            _refuse_injection(name, value)
            if name.lower() in PROTECTED_HEADERS:
                ignored.append(name)
                continue
            headers[name] = render_header(name, value, ctx) if is_template(value) else value
        if ignored:
            log.warning("step %s: headers option cannot set %s; ignored", ctx.step_id, ignored)
        headers.setdefault("User-Agent", f"fabflow/{fabflow.__version__}")
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = ctx.idempotency_key
        if self.settings.signing_secret:
            headers[signing.HEADER] = signing.sign(self.settings.signing_secret, body)
        return headers, ignored

    @staticmethod
    async def _send(
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: bytes,
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as resp:
            excerpt = await _read_capped(resp, MAX_BODY_BYTES + 1)
            if len(excerpt) > MAX_BODY_BYTES:
                # Stop here: closing drops the connection instead of downloading the rest.
                resp.close()
            return resp.status, resp.headers, excerpt  # read-only, valid after release


def _has_statements(options: ConsumeRestApiOptions) -> bool:
    """Whether any template of the step has statements (loops), cheaply: most have none."""
    texts = [options.uri, *options.headers.values()]
    if options.body is not None:
        texts.append(orjson.dumps(options.body).decode())
    return has_statements(*texts)


def render_json(value: Any, context: Mapping[str, Any], where: str) -> Any:
    """``value`` with every template string rendered (keys stay literal); ``where`` names the
    option in errors (``body.items[0].sku``)."""
    if isinstance(value, str):
        return render(value, context, where) if is_template(value) else value
    if isinstance(value, dict):
        return {k: render_json(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render_query(pairs: tuple[tuple[str, str | None], ...], context: Mapping[str, Any]) -> str:
    """The query string: names and literal values as written; a templated value rendered,
    then URL-encoded as a whole (so a rendered ``&`` or ``=`` cannot add a parameter)."""
    parts = []
    for name, value in pairs:
        if value is not None and is_template(value):
            value = quote(render(value, context, f"uri?{name}"), safe="")
        parts.append(name if value is None else f"{name}={value}")
    return "&".join(parts)


def render_header(name: str, value: str, ctx: StepContext) -> str:
    """A header value rendered; a control character in it (CR, LF, NUL ...) fails the step
    rather than let a rendered value add headers. The message never shows the value."""
    where = f"headers.{name}"
    rendered = render(value, ctx.template_context, where)
    if _CONTROL.search(rendered):
        raise PermanentStepError(
            f"{where}: the rendered value holds a line break or another control character;"
            " refusing to send it (header injection)",
            error_type="template",
            details={"template": where},
        )
    return rendered


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, without reading further."""
    if resp.content_length is not None and resp.content_length <= limit:
        return await resp.read()  # the usual small answer: one read
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = await resp.content.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _refuse_injection(name: str, value: str) -> None:
    bad = any(c in text for text in (name, value) for c in "\r\n\0") or ":" in name or not name
    if bad:
        raise PermanentStepError(
            f"header {name!r} in the step's headers option has an invalid name or a value with "
            "CR, LF or NUL; refusing to send it",
            error_type="header_injection",
        )


def _details(status: int, started: float, excerpt: bytes) -> dict[str, Any]:
    truncated = len(excerpt) > EXCERPT_BYTES
    if truncated:
        # An incremental decoder drops a multi-byte character cut in half by the cap.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(excerpt[:EXCERPT_BYTES], final=False)
    else:
        text = excerpt.decode("utf-8", errors="replace")
    return {
        "httpStatus": status,
        "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        "responseExcerpt": text,
        "responseTruncated": truncated,
    }


def _raise_for_status(
    status: int, headers: Mapping[str, str], url: URL, details: dict[str, Any]
) -> NoReturn:
    """The step error of a non-2xx answer; ``url`` is the URL as messages may show it."""
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientStepError(
            f"{url.human_repr()} answered HTTP {status}",
            error_type="http_status",
            details=details,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if 300 <= status < 400:
        location = headers.get("Location", "")
        details["location"] = location
        raise PermanentStepError(
            f"{url.human_repr()} answered HTTP {status}, a redirect to {location or '(none)'}; "
            "redirects are not followed: set the step's uri to the final URL",
            error_type="http_status",
            details=details,
        )
    raise PermanentStepError(
        f"{url.human_repr()} answered HTTP {status}", error_type="http_status", details=details
    )


@dataclass(frozen=True, slots=True)
class RestCall:
    """The request an error is about, as its message and details tell it."""

    url: URL
    timeout_s: float
    started: float

    @property
    def latency(self) -> dict[str, float]:
        return {"latencyMs": round((time.perf_counter() - self.started) * 1000, 1)}


def _timed_out(exc: TimeoutError, call: RestCall) -> StepError:
    return TransientStepError(
        f"{call.url.human_repr()} did not answer within {call.timeout_s:g} s",
        error_type="timeout",
        details=call.latency,
    )


def _tls_failed(exc: ssl.SSLError | aiohttp.ClientSSLError, call: RestCall) -> StepError:
    return PermanentStepError(
        f"TLS with {call.url.host} failed: {exc}", error_type="tls", details=call.latency
    )


def _invalid_url(exc: aiohttp.InvalidURL, call: RestCall) -> StepError:
    return PermanentStepError(f"invalid uri: {exc}", error_type="options")


def _unreachable(exc: aiohttp.ClientError | OSError, call: RestCall) -> StepError:
    return TransientStepError(
        f"could not reach {call.url.human_repr()}: {str(exc) or type(exc).__name__}",
        error_type="connection",
        details=call.latency,
    )


# What aiohttp and asyncio raise, as step errors; the nearest class in the MRO wins.
_AIOHTTP_ERRORS: ErrorTable[RestCall, StepError] = {
    TimeoutError: _timed_out,  # the step's deadline
    aiohttp.ServerTimeoutError: _timed_out,  # also a ClientError, which is nearer in its MRO
    aiohttp.ClientSSLError: _tls_failed,
    ssl.SSLError: _tls_failed,
    aiohttp.InvalidURL: _invalid_url,
    aiohttp.ClientError: _unreachable,
    OSError: _unreachable,
}


def rest_error(exc: BaseException, call: RestCall) -> StepError | None:
    """The step error for what sending raised, or None for an error that is not ours to map."""
    refused = _cause(exc, OutboundRefused)
    if refused is not None:
        return refused
    return translate(exc, _AIOHTTP_ERRORS, call)


def _cause(exc: BaseException, kind: type[OutboundRefused]) -> OutboundRefused | None:
    """The first ``kind`` in the cause chain (aiohttp may wrap what the resolver raised)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
