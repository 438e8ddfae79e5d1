"""Options models of the three step types of the spec, our extension keys, and our fourth type
(``manual-confirmation``).

Attributes are snake_case in Python; the JSON keys are the spec's camelCase (aliases).
Validation is strict: a flow file says ``"timeout": 5000``, never ``"timeout": "5000"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

FILE_FORMATS = ("stl", "obj", "3mf", "ply", "glb", "stl-ascii")
FileFormat = Literal["stl", "obj", "3mf", "ply", "glb", "stl-ascii"]


@lru_cache(maxsize=4096)
def _email_problem(address: str) -> str | None:
    # Flows repeat the same few addresses many times; the cache keeps big flows fast.
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def check_email(address: str) -> str:
    """``address`` when it is a valid email address (or a ``{{ template }}``), else ValueError."""
    if "{{" in address:
        # Rendered per order (e.g. "{{ order.customer.email }}"); checked again when sent.
        if "\r" in address or "\n" in address:
            raise ValueError("must not contain line breaks")
        return address
    problem = _email_problem(address)
    if problem is not None:
        raise ValueError(f'"{address}" is not a valid email address: {problem}')
    return address


@lru_cache(maxsize=4096)
def check_http_uri(uri: str) -> str:
    """``uri`` when it is an absolute http or https URL with a host, else ValueError."""
    hint = (
        f'must be an absolute http or https URL such as "https://example.com/orders"; got "{uri}"'
    )
    if not uri or len(uri.split()) != 1 or uri != uri.strip():
        raise ValueError(hint + " (spaces are not allowed)")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{hint} ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(hint)
    return uri


# A Jinja expression, statement or comment: what makes a string a template.
TEMPLATE_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
TEMPLATE_MARKERS = ("{{", "{%", "{#")


def is_template(text: str) -> bool:
    """Whether ``text`` holds Jinja syntax (and is rendered per order)."""
    return any(marker in text for marker in TEMPLATE_MARKERS)


@dataclass(frozen=True, slots=True)
class UriTemplate:
    """A request URI whose query values are templates: ``base`` (scheme, host, path) and
    ``fragment`` are literal, each ``(name, value)`` of ``query`` is as written (name literal,
    value a template whose rendered parts are URL-encoded)."""

    base: str
    query: tuple[tuple[str, str | None], ...]
    fragment: str


_ONLY_VALUES = "templates may stand in query values only: https://host/path?name={{ order.id }}"


@lru_cache(maxsize=4096)
def parse_uri_template(uri: str) -> UriTemplate:
    """``uri`` split for rendering; ValueError when a template is anywhere but a query value."""
    # Each template span masked by NULs of its length: what is left is literal, and split
    # positions in the mask are positions in ``uri``.
    masked = TEMPLATE_SPAN.sub(lambda m: "\0" * len(m.group()), uri)
    if is_template(masked):
        raise ValueError('has a template that is not closed ("{{" without "}}")')
    start = masked.find("?")
    if start < 0 or "\0" in masked[:start]:
        raise ValueError(
            "a template in the scheme, host or path is not allowed (they stay literal, so a"
            f" rendered URL cannot point somewhere else); {_ONLY_VALUES}"
        )
    end = masked.find("#", start)
    end = len(uri) if end < 0 else end
    if "\0" in masked[end:]:
        raise ValueError(f"a template in the #fragment is not allowed; {_ONLY_VALUES}")
    if len(masked[start:end].split()) > 1:
        raise ValueError("spaces are not allowed outside templates (URL-encode them as %20)")
    check_http_uri(uri[:start])
    return UriTemplate(uri[:start], _query_pairs(uri, masked, start + 1, end), uri[end:])


def _query_pairs(uri: str, masked: str, start: int, end: int) -> tuple[tuple[str, str | None], ...]:
    pairs: list[tuple[str, str | None]] = []
    pos = start
    for part in masked[start:end].split("&"):
        eq = part.find("=")
        name_end = len(part) if eq < 0 else eq
        if "\0" in part[:name_end]:
            raise ValueError(f"a query parameter's name must be literal; {_ONLY_VALUES}")
        value = None if eq < 0 else uri[pos + eq + 1 : pos + len(part)]
        pairs.append((uri[pos : pos + name_end], value))
        pos += len(part) + 1
    return tuple(pairs)


def check_request_uri(uri: str) -> str:
    """A literal http(s) URL (``check_http_uri``), or one whose query values are templates."""
    if is_template(uri):
        parse_uri_template(uri)
        return uri
    return check_http_uri(uri)


def check_header_names(headers: dict[str, str]) -> dict[str, str]:
    """Header names are literal: values may be templates, names may not."""
    for name in headers:
        if is_template(name):
            raise ValueError(f"header name {name!r} must be literal (only values may be templates)")
    return headers


EmailAddress = Annotated[str, AfterValidator(check_email)]
HttpUri = Annotated[
    str,
    Field(
        max_length=2048, json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
    ),
    AfterValidator(check_http_uri),
]


class OptionsModel(BaseModel):
    """Base of every step type's options: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )


RequestUri = Annotated[
    str,
    Field(
        max_length=2048, json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
    ),
    AfterValidator(check_request_uri),
]


class ConsumeRestApiOptions(OptionsModel):
    """Options of a consume-rest-api step: where the order is sent, and what is sent."""

    uri: RequestUri = Field(
        description=(
            "Absolute http or https URL the request is sent to. Extension: query values may be"
            " templates (rendered per order, URL-encoded); scheme, host and path are literal."
        )
    )
    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", description="Extension: HTTP method."
    )
    headers: Annotated[dict[str, str], AfterValidator(check_header_names)] = Field(
        default_factory=dict,
        description=(
            "Extension: extra request headers; values may be templates, such as"
            ' "Bearer {{ secrets.MES_TOKEN }}".'
        ),
    )
    body: JsonValue | None = Field(
        default=None,
        description=(
            "Extension: the JSON sent instead of the order resource; its strings may be"
            " templates (rendered per order, always to strings). Absent or null: the order."
        ),
    )
    wait_for_callback: bool = Field(
        default=False,
        description=(
            "Extension: a 2xx answer only accepts the order; the step ends when the receiver"
            " POSTs the outcome to the order's updateUrl, or at the step's timeout."
        ),
    )


class SendEmailOptions(OptionsModel):
    """Options of a send-email step: who gets which message."""

    recipients: list[EmailAddress] = Field(
        description="Addresses that receive the email.", min_length=1, max_length=100
    )
    subject: str = Field(description="Subject template.", max_length=998)
    message: str = Field(description="Body template.", max_length=100_000)
    cc: list[EmailAddress] = Field(
        default_factory=list, description="Extension: Cc addresses.", max_length=100
    )
    bcc: list[EmailAddress] = Field(
        default_factory=list, description="Extension: Bcc addresses.", max_length=100
    )
    attach_production_files: bool = Field(
        default=False, description="Extension: attach the order's production files."
    )


class GenerateProductionFilesOptions(OptionsModel):
    """Options of a generate-production-files step: the file format."""

    file_format: FileFormat = Field(
        default="stl",
        description="stl (binary STL) or obj; extensions: 3mf, ply, glb, stl-ascii.",
    )


class ManualConfirmationOptions(OptionsModel):
    """Options of a manual-confirmation step: what the person is asked, and who is told."""

    prompt: str = Field(
        description=(
            "Template of what the person confirms or rejects, shown on the order and sent to the"
            " assignees."
        ),
        min_length=1,
        max_length=10_000,
    )
    assignees: list[EmailAddress] = Field(
        default_factory=list,
        description="Addresses told by email, with a link to the order, when the step starts.",
        max_length=100,
    )
