"""Options models of the three step types of the spec (and our extension keys).

Attributes are snake_case in Python; the JSON keys are the spec's camelCase (aliases).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

FILE_FORMATS = ("stl", "obj", "3mf", "ply", "glb", "stl-ascii")
FileFormat = Literal["stl", "obj", "3mf", "ply", "glb", "stl-ascii"]


class OptionsModel(BaseModel):
    """Base of every step type's options: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ConsumeRestApiOptions(OptionsModel):
    uri: str = Field(description="Absolute http or https URL the order is sent to.", max_length=2048)
    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", description="Extension: HTTP method."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extension: extra request headers."
    )
    wait_for_callback: bool = Field(
        default=False, description="Extension: succeed only when the receiver calls back."
    )


class SendEmailOptions(OptionsModel):
    recipients: list[str] = Field(description="Addresses that receive the email.", min_length=1)
    subject: str = Field(description="Subject template.", max_length=998)
    message: str = Field(description="Body template.", max_length=100_000)
    cc: list[str] = Field(default_factory=list, description="Extension: Cc addresses.")
    bcc: list[str] = Field(default_factory=list, description="Extension: Bcc addresses.")
    attach_production_files: bool = Field(
        default=False, description="Extension: attach the order's production files."
    )


class GenerateProductionFilesOptions(OptionsModel):
    file_format: FileFormat = Field(
        default="stl",
        description="stl (binary STL) or obj; extensions: 3mf, ply, glb, stl-ascii.",
    )
