"""Options models of the three step types of the spec, our extension keys, and our fourth type
(``manual-confirmation``).

Attributes are snake_case in Python; the JSON keys are the spec's camelCase (aliases).
Validation is strict: a flow file says ``"timeout": 5000``, never ``"timeout": "5000"``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
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


class ConsumeRestApiOptions(OptionsModel):
    """Options of a consume-rest-api step: where the order is sent."""

    uri: HttpUri = Field(description="Absolute http or https URL the order is sent to.")
    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", description="Extension: HTTP method."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extension: extra request headers."
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
