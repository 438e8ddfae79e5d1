"""A model's Customizer parameters: read from its ``.scad`` source, as a JSON Schema, checked.

``parse_customizer`` reads the parameters OpenSCAD's Customizer would offer (its rules, from
2021.01's sources, are in ``toplevel`` and ``annotations``): each top-level variable assigned a
literal before the first ``{``, outside the ``/* [Hidden] */`` tab. The widget, and so the
parameter's kind and limits, follows from the default's type and the annotation:

=======  ==============================  ============================================
default  annotation                      parameter
=======  ==============================  ============================================
number   ``[min:max]``                   slider, whole steps of 1 from min
number   ``[min:step:max]``              slider, steps of ``step`` from min (max is cut
                                         down to the last full step, as OpenSCAD does)
number   ``[max]``                       slider of whole numbers from 0 to max
number   ``[1, 2, 3]``, ``[1:S, 2:L]``   dropdown (labels optional)
number   ``0.5`` (a positive number)     spin box stepping by 0.5 (no limits)
number   none or anything else           spin box (no limits)
string   ``[a, b]``, ``[a:A, b:B]``      dropdown (labels optional)
string   ``12`` or ``[12]``              text of at most 12 characters
string   none or anything else           text
boolean  (ignored)                       check box
vector   ``[min:max]``, ``[min:s:max]``  1 to 4 numbers, each within the range
=======  ==============================  ============================================

A number is whole (``"type": "integer"``) when OpenSCAD's widget shows no decimals: a slider
whose min and step are whole, a spin box or vector whose default and step (if any) are whole,
a dropdown of whole numbers.
Other literals (vectors of more than 4 numbers or of strings, ranges, ``undef``) are not
offered, as the Customizer only offers them as free text.

A model whose annotations contradict its defaults (a default outside its slider, off its steps,
not among its dropdown's values, longer than its length) is refused with every such line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fabflow.errors import InvalidProduct, Problem
from fabflow.production.scad.annotations import Annotation, CommentIndex, Labelled, parse_annotation
from fabflow.production.scad.lexer import tokenize
from fabflow.production.scad.schema import (
    GRID_TOLERANCE,
    customizer_schema,
    fmt,
    on_grid,
    show_options,
    values_problems,
)
from fabflow.production.scad.toplevel import (
    NOT_LITERAL,
    Assignment,
    ScadRange,
    first_brace_line,
    top_level_assignments,
)

ParameterKind = Literal["number", "string", "boolean", "vector"]
Widget = Literal["slider", "spinbox", "dropdown", "text", "checkbox", "vector"]
HIDDEN_TAB = "Hidden"
GLOBAL_TAB = "Global"  # OpenSCAD shows this tab's parameters in every tab
_MAX_VECTOR = 4  # OpenSCAD's vector widget has four boxes; longer vectors are free text


@dataclass(frozen=True)
class ScadParameter:
    """One parameter a customer may set; ``name`` is the OpenSCAD variable and the JSON key."""

    name: str
    kind: ParameterKind
    default: Any  # int | float, str, bool, list[int | float]
    description: str  # the comment line directly above the variable, "" if none
    tab: str  # the /* [Tab] */ group it is in ("" before any tab)
    line: int  # 1-based, the line of the assignment that sets the default
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # sliders: the grid from minimum; spin boxes: the increment
    max_length: int | None = None  # strings
    options: tuple[tuple[Any, str], ...] = ()  # dropdowns: (value, label)
    integer: bool = False  # numbers (and vector items) are whole
    widget: Widget = "spinbox"

    @property
    def on_grid(self) -> bool:
        """Whether values must fall on ``minimum + k * step`` (sliders only, as in OpenSCAD:
        a spin box's step is how far its arrows move, not a rule)."""
        return self.widget == "slider" and self.step is not None and self.minimum is not None


@dataclass(frozen=True)
class Customizer:
    """The parameters of one model, in source order (``[Hidden]`` ones left out)."""

    parameters: tuple[ScadParameter, ...]

    def json_schema(self, title: str = "", description: str = "") -> dict[str, Any]:
        """The parameters as a draft 2020-12 JSON Schema (see ``scad.schema``)."""
        return customizer_schema(self.parameters, title, description)

    def problems(self, values: Mapping[str, Any]) -> list[Problem]:
        """Every problem with ``values``; pointers are relative to the parameters object
        (``/letter_size``, ``/size/1``)."""
        return values_problems(self.parameters, values)

    def with_defaults(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: the one given, else the default (check ``problems`` first;
        unknown keys are dropped)."""
        filled = {p.name: values.get(p.name, p.default) for p in self.parameters}
        # a vector default is the parameter's own list: hand out a copy
        return {k: list(v) if isinstance(v, list) else v for k, v in filled.items()}

    def parameter(self, name: str) -> ScadParameter | None:
        """The parameter called ``name``, if there is one."""
        return next((p for p in self.parameters if p.name == name), None)


def parse_customizer(source: str, filename: str = "model.scad") -> Customizer:
    """The Customizer parameters of ``source``; raises ``InvalidProduct`` listing every line
    whose parameter cannot be read (or the line where the source stops making sense)."""
    tokens = tokenize(source, filename)
    stop = first_brace_line(tokens)
    comments = CommentIndex(tokens)
    parameters: list[ScadParameter] = []
    problems: list[Problem] = []
    for assignment in top_level_assignments(tokens, filename):
        if assignment.value is NOT_LITERAL or (stop is not None and assignment.line >= stop):
            continue  # OpenSCAD offers literals only, and none after the first '{'
        try:
            parameter = _read(assignment, comments)
        except _Refused as refused:
            line = assignment.line
            message = f"line {line}: {assignment.name}: {refused}"
            problems.append(Problem(pointer=f"{filename}:{line}", message=message))
            continue
        if parameter is not None:
            parameters.append(parameter)
    if problems:
        lines = "; ".join(p.message for p in problems)
        raise InvalidProduct(
            f"{filename}: the Customizer parameters cannot be read: {lines}", problems
        )
    return Customizer(tuple(parameters))


def _read(assignment: Assignment, comments: CommentIndex) -> ScadParameter | None:
    """The parameter a literal assignment makes (None when hidden or not offered)."""
    tab = comments.tab(assignment.line)
    if tab == HIDDEN_TAB:
        return None
    annotation = parse_annotation(comments.annotation(assignment.line))
    description = comments.description(assignment.line)
    return _Context(assignment, annotation, description, tab or "").parameter()


class _Refused(Exception):
    """An annotation that contradicts its variable's default (the message says how)."""


@dataclass(frozen=True)
class _Context:
    """One assignment with what its comments say: builds its parameter."""

    assignment: Assignment
    annotation: Annotation
    description: str
    tab: str

    def parameter(self) -> ScadParameter | None:
        default = self.assignment.value
        if isinstance(default, bool):
            return self._make("boolean", default, widget="checkbox")
        if isinstance(default, float):
            return self._number(default)
        if isinstance(default, str):
            return self._string(default)
        if isinstance(default, list) and 0 < len(default) <= _MAX_VECTOR:
            numbers = [v for v in default if isinstance(v, float) and not isinstance(v, bool)]
            if len(numbers) == len(default):
                return self._vector(numbers)
        return None  # undef, ranges, long or mixed vectors: not offered

    def _make(self, kind: ParameterKind, default: Any, **limits: Any) -> ScadParameter:
        name, line = self.assignment.name, self.assignment.line
        return ScadParameter(name, kind, default, self.description, self.tab, line, **limits)

    def _number(self, default: float) -> ScadParameter:
        annotation = self.annotation
        if isinstance(annotation, ScadRange):
            return self._slider(default, annotation)
        single = annotation[0] if isinstance(annotation, list) and len(annotation) == 1 else None
        if isinstance(single, float):
            return self._slider_to(default, single)
        if isinstance(annotation, list):
            return self._number_dropdown(default, annotation)
        step = annotation if isinstance(annotation, float) and annotation > 0 else None
        # OpenSCAD's spin box shows as many decimals as its step has, or, without a step, as
        # its default has: none means whole numbers.
        integer = default.is_integer() and (step is None or step.is_integer())
        return self._make(
            "number",
            _number(default, integer),
            step=None if step is None else _number(step, integer),
            integer=integer,
        )

    def _slider(self, default: float, bounds: ScadRange) -> ScadParameter:
        low, step = bounds.begin, bounds.step
        middle = "" if step == 1 else f"{fmt(step)}:"
        shown = f"[{fmt(low)}:{middle}{fmt(bounds.end)}]"
        if step <= 0:
            raise _Refused(f"the slider {shown} needs a positive step")
        if bounds.end < low:
            raise _Refused(f"the slider {shown} ends below where it starts")
        # OpenSCAD cuts the end down to the last full step (as Thingiverse did).
        high = _clean(low + math.floor((bounds.end - low) / step + GRID_TOLERANCE) * step)
        integer = low.is_integer() and step.is_integer()
        _check_on_slider(default, low, step, high, shown)
        return self._make(
            "number",
            _number(default, integer),
            minimum=_number(low, integer),
            maximum=_number(high, integer),
            step=_number(step, integer),
            integer=integer,
            widget="slider",
        )

    def _slider_to(self, default: float, top: float) -> ScadParameter:
        """``[max]``, Thingiverse's slider: whole numbers from 0 to max."""
        high = float(math.trunc(top))  # OpenSCAD reads the maximum as a whole number
        if high <= 0:
            raise _Refused(f"the slider [{fmt(top)}] needs a maximum of 1 or more")
        _check_on_slider(default, 0.0, 1.0, high, f"[{fmt(top)}]")
        return self._make(
            "number",
            int(default),
            minimum=0,
            maximum=int(high),
            step=1,
            integer=True,
            widget="slider",
        )

    def _number_dropdown(self, default: float, items: list[Any]) -> ScadParameter:
        options: list[tuple[float, str]] = []
        for item in items:
            value, label = (item.value, item.label) if isinstance(item, Labelled) else (item, item)
            if not isinstance(value, float):
                raise _Refused(
                    f'the dropdown value "{value}" is not a number, but the default '
                    f"{fmt(default)} is (quote the default to offer words)"
                )
            if all(value != known for known, _ in options):
                options.append((value, _label(label)))
        integer = default.is_integer() and all(value.is_integer() for value, _ in options)
        typed = tuple((_number(v, integer), label) for v, label in options)
        if all(default != value for value, _ in options):
            raise _Refused(f"the default {fmt(default)} is not one of {show_options(typed)}")
        return self._make(
            "number", _number(default, integer), options=typed, integer=integer, widget="dropdown"
        )

    def _string(self, default: str) -> ScadParameter:
        annotation = self.annotation
        limit: float | None = None
        if isinstance(annotation, list):
            if len(annotation) != 1 or not isinstance(annotation[0], float):
                return self._string_dropdown(default, annotation)
            limit = annotation[0]  # [12], Thingiverse's form
        elif isinstance(annotation, float) and annotation > 0:
            limit = annotation
        max_length = int(limit) if limit is not None and limit >= 1 else None
        if max_length is not None and len(default) > max_length:
            raise _Refused(
                f"the default is {len(default)} characters long, above its maximum {max_length}"
            )
        return self._make("string", default, max_length=max_length, widget="text")

    def _string_dropdown(self, default: str, items: list[Any]) -> ScadParameter:
        options: list[tuple[str, str]] = []
        for item in items:
            value, label = (item.value, item.label) if isinstance(item, Labelled) else (item, item)
            text = _label(value)  # a number offered for a string becomes its text, "10"
            if all(text != known for known, _ in options):
                options.append((text, _label(label)))
        if all(default != value for value, _ in options):
            raise _Refused(f'the default "{default}" is not one of {show_options(tuple(options))}')
        return self._make("string", default, options=tuple(options), widget="dropdown")

    def _vector(self, default: list[float]) -> ScadParameter:
        bounds = self.annotation if isinstance(self.annotation, ScadRange) else None
        if bounds is not None and bounds.begin == 0 and bounds.end == 0:
            bounds = None  # OpenSCAD's vector widget reads [0:0] as no limits
        step = bounds.step if bounds is not None and bounds.step > 0 else None
        integer = all(v.is_integer() for v in default) and (step is None or step.is_integer())
        values = [_number(v, integer) for v in default]
        if bounds is None:
            return self._make("vector", values, integer=integer, widget="vector")
        for index, value in enumerate(default):
            if not bounds.begin <= value <= bounds.end:
                raise _Refused(
                    f"item {index} of the default, {fmt(value)}, is outside "
                    f"[{fmt(bounds.begin)}:{fmt(bounds.end)}]"
                )
        return self._make(
            "vector",
            values,
            minimum=_number(bounds.begin, integer),
            maximum=_number(bounds.end, integer),
            step=_number(step, integer) if step is not None else None,
            integer=integer,
            widget="vector",
        )


def _check_on_slider(default: float, low: float, step: float, high: float, shown: str) -> None:
    if not low - 1e-9 <= default <= high + 1e-9:
        raise _Refused(
            f"the default {fmt(default)} is outside the slider {shown}, "
            f"which runs from {fmt(low)} to {fmt(high)}"
        )
    if not on_grid(default, low, step):
        raise _Refused(
            f"the default {fmt(default)} is not on the slider {shown}, which moves "
            f"in steps of {fmt(step)} from {fmt(low)}"
        )


def _number(value: float, integer: bool) -> int | float:
    return int(value) if integer and value.is_integer() else float(value)


def _clean(value: float) -> float:
    """``value`` without the float noise of adding steps (0.30000000000000004 -> 0.3)."""
    return round(value, 10)


def _scad_str(value: float) -> str:
    """A number as OpenSCAD's ``str()`` writes it (6 significant digits, ``1e+6``)."""
    text = f"{value:g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{exponent[0]}{int(exponent[1:])}" if exponent else text


def _label(value: float | str) -> str:
    return _scad_str(value) if isinstance(value, float) else value
