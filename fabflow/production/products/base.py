"""What a product is: a name, a parameter model in millimetres, checks, and a builder.

A product plugin subclasses ``Product`` and names its parameter model::

    class Tag(Product[TagParameters]):
        name = "tag"
        title = "Luggage tag"
        description = "A flat tag with a strap slot."
        parameters = TagParameters

        def build(self, params: TagParameters) -> dict[str, Manifold]:
            return {"tag": ...}

``build`` returns one closed solid per part (part name -> manifold3d ``Manifold``); each part
becomes its own file. ``problems`` reports what the parameter model alone cannot (text that does
not fit, a wall thicker than the box) so intake refuses the order before it is accepted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from manifold3d import Manifold
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from fabflow.errors import ParameterError as ParameterError  # builders raise it; import it here
from fabflow.production.text import FontWeight, describe_characters, missing_characters


class ProductParameters(BaseModel):
    """Base of every product's parameters: camelCase keys, strict types, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,  # "80" is not a width: a shop's integration bug should show, not be guessed
    )


@dataclass(frozen=True)
class ParameterProblem:
    """A parameter value the product cannot make; ``parameter`` is the JSON key."""

    parameter: str
    message: str


P = TypeVar("P", bound=ProductParameters)


class Product(ABC, Generic[P]):
    """A parametric product. Subclasses set the class attributes and implement ``build``."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    parameters: type[ProductParameters]
    # Parameters holding text to draw, checked against the font named by ``font_parameter``.
    text_parameters: ClassVar[tuple[str, ...]] = ()
    font_parameter: ClassVar[str | None] = None

    @abstractmethod
    def build(self, params: P) -> dict[str, Manifold]:
        """One solid per part, in millimetres, sitting on z=0."""

    def problems(self, params: P) -> list[ParameterProblem]:
        """What the parameters ask for that cannot be made; the default checks text."""
        found: list[ParameterProblem] = []
        weight: FontWeight = "regular"
        if self.font_parameter:
            weight = getattr(params, self.font_parameter)
        for attribute in self.text_parameters:
            missing = missing_characters(getattr(params, attribute), weight)
            if missing:
                found.append(
                    ParameterProblem(
                        json_key(params, attribute),
                        f"the font cannot draw {describe_characters(missing)}",
                    )
                )
        return found


def json_key(params: BaseModel, attribute: str) -> str:
    """The camelCase key a user writes for a Python attribute of a parameter model."""
    field = type(params).model_fields[attribute]
    return field.alias or attribute
