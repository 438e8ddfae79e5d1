"""Sandboxed templates: the documented context renders, everything else is an error."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.errors import PermanentStepError
from fabflow.steps.templates import compile_template, render, syntax_problem

CONTEXT: dict[str, Any] = {
    "order": {
        "id": "ord_1",
        "status": "paid",
        "customer": {"name": "Ada"},
        "lines": [{"product": "ring", "quantity": 2}],
    },
    "error": None,
    "step": {"id": "mail", "type": "send-email", "successStatus": "mailed"},
    "flow": {"id": "default", "name": "Default", "version": 3},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ order.id }}", "ord_1"),
        ("{{ order.customer.name | upper }}", "ADA"),
        ("{% for l in order.lines %}{{ l.quantity }}x {{ l.product }}{% endfor %}", "2x ring"),
        ("{{ order.lines[0]['product'] }}", "ring"),
        ("{{ step.successStatus }} in {{ flow.name }} v{{ flow.version }}", "mailed in Default v3"),
        ("{% if error %}failed{% else %}fine{% endif %}", "fine"),
        ("{{ order.note | default('none') }}", "none"),
        ("<b>{{ order.customer.name }}</b> & co", "<b>Ada</b> & co"),  # no HTML escaping
    ],
)
def test_renders_the_documented_context(source: str, expected: str) -> None:
    assert render(source, CONTEXT) == expected


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ ordr.id }}", "'ordr' is undefined"),
        ("{{ order.custmer.name }}", "'order.custmer' is undefined"),
        ("{{ order.lines[0].colour }}", "'order.lines[0].colour' is undefined"),
        ("{{ order.lines[5] }}", "'order.lines[5]' is undefined"),
        ("{{ error.message }}", "'error.message' is undefined"),
    ],
)
def test_unknown_variables_are_errors_that_name_them(source: str, named: str) -> None:
    with pytest.raises(PermanentStepError) as caught:
        render(source, CONTEXT, "subject")
    assert caught.value.error_type == "template"
    assert named in caught.value.message
    assert caught.value.message.startswith("subject: ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ order.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ order.lines.append(1) }}",
        "{{ order.customer.update({'name': 'x'}) }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_internals_and_mutation(source: str) -> None:
    with pytest.raises(PermanentStepError) as caught:
        render(source, CONTEXT)
    assert caught.value.error_type == "template"


def test_syntax_errors() -> None:
    assert syntax_problem("{{ order.id }}") is None
    assert "line 2" in (syntax_problem("ok\n{% if %}") or "")
    with pytest.raises(PermanentStepError, match="syntax error"):
        render("{{ order.id", CONTEXT)


def test_templates_are_compiled_once_per_source() -> None:
    assert compile_template("{{ order.status }}") is compile_template("{{ order.status }}")


def test_a_callbacks_data_is_readable_by_later_templates() -> None:
    """What a receiver sent back in its callback (``stepData``) reads like the rest."""
    from fabflow.steps.templates import render

    context = {"order": {"id": "ord_1", "stepData": {"mes": {"jobId": "J-7"}}}}
    assert render("job {{ order.stepData.mes.jobId }}", context) == "job J-7"
