"""The choice's expression language, and templates and expressions checked at validate time:
table tests, every problem with its pointer."""

from __future__ import annotations

from typing import Any

import pytest

from fabflow.flows import expressions
from fabflow.flows.expressions import ExpressionError, compile_expression, parse
from fabflow.flows.sandbox import SANDBOX, scoped_context
from fabflow.flows.validate import load_flow
from fabflow.lifecycle.route import RouteError, route

ORDER = {
    "id": "ord_1",
    "status": "Created",
    "customer": {"name": "Ada", "email": "ada@example.com"},
    "lines": [{"id": "1", "product": "ring", "quantity": 2, "parameters": {"material": "gold"}}],
    "data": {"country": "BE", "total": 620.5},
}
CONTEXT = {
    "order": ORDER,
    "steps": {"mes": {"response": {"status": 201, "headers": {}, "body": {"jobId": "J-7"}}}},
    "error": None,
    "step": {"id": "route"},
    "flow": {"id": "f"},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ('order.data.country == "BE"', True),
        ('order.data.country in ["BE", "NL"]', True),
        ('order.data.country not in ["BE", "NL"]', False),
        ("order.data.total > 500 and order.lines | length == 1", True),
        ('order.lines[0].parameters.material == "gold"', True),
        ('not (order.data.country == "US") or false', True),
        ('steps.mes.response.body.jobId == "J-7"', True),
        ('steps["mes"].response.status >= 200 and steps.mes.response.status < 300', True),
        ("order.data.rush is defined", False),
        ("order.data.rush | default(false)", False),
        ('order.customer.name | lower == "ada"', True),
        ("order.lines[0].quantity * 2 + 1 == 5", True),
        ('"BE" if order.data.total > 1000 else "small" == "small"', True),
    ],
)
def test_expressions_evaluate(expression: str, value: bool) -> None:
    assert compile_expression(expression)(CONTEXT) is value


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("", "is empty"),
        ("order.data.country ==", "syntax error"),
        ('order.data.country == "BE" }}', "unexpected"),
        ("order.data.total ** 2 > 1", "the power operator ** is not allowed"),
        ("range(10) | length > 1", "calling a function or method is not allowed"),
        ("order.id.upper() == 'X'", "calling a function or method is not allowed"),
        ("order.data | tojson", 'the filter "tojson" is not allowed'),
        ("order.id is divisibleby(3)", 'the test "is divisibleby" is not allowed'),
        ("order.lines[0:2]", "slices is not allowed"),
        ("{'a': 1}", "object literals is not allowed"),
    ],
)
def test_expressions_outside_the_language_are_refused(expression: str, says: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("order.data.rush == true", "'order.data.rush' is undefined"),
        ("order.lines[3].quantity > 1", "'order.lines[3]' is undefined"),
        ("order.data.country > 3", "TypeError"),
        ('"ab" * (order.lines[0].quantity * 100000) > ""', "repetition longer than"),
    ],
)
def test_a_failed_evaluation_says_why(expression: str, says: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(expression)(CONTEXT)
    assert says in str(caught.value)


class _Rule:
    def __init__(self, when: str, next: str) -> None:
        self.when, self.next = when, next


class _Choice:
    step_definition_id = "route"
    success_status = None
    on_error = None
    otherwise = "elsewhere"

    def __init__(self, *rules: _Rule) -> None:
        self.rules = rules


def _test(when: str) -> bool:
    try:
        return compile_expression(when)(CONTEXT)
    except ExpressionError as exc:
        raise RouteError(str(exc)) from exc


def test_the_first_true_rule_wins_else_otherwise() -> None:
    choice = _Choice(
        _Rule("order.data.total > 1000", "big"), _Rule("true", "eu"), _Rule("true", "x")
    )
    taken = route(choice, _test)
    assert (taken.rule, taken.next) == (1, "eu")
    assert route(_Choice(_Rule("false", "a")), _test).next == "elsewhere"
    with pytest.raises(RouteError, match="undefined"):
        route(_Choice(_Rule("order.nope == 1", "a")), _test)


# -- validate-time checks of templates and expressions --------------------------------------


def email(sid: str, subject: str, **kw: Any) -> dict[str, Any]:
    options = {"recipients": ["ops@example.com"], "subject": subject, "message": "m"}
    return {
        "stepDefinitionId": sid,
        "type": "send-email",
        "successStatus": sid,
        "options": options,
        **kw,
    }


def rest(sid: str, **kw: Any) -> dict[str, Any]:
    options = {"uri": "https://mes.example.com/jobs"}
    return {
        "stepDefinitionId": sid,
        "type": "consume-rest-api",
        "successStatus": sid,
        "options": options,
        **kw,
    }


def choice(sid: str, when: str, then: str, otherwise: str, **kw: Any) -> dict[str, Any]:
    options = {"rules": [{"when": when, "next": then}], "otherwise": otherwise}
    return {"stepDefinitionId": sid, "type": "choice", "options": options, **kw}


def problems(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p.pointer, p.message) for p in load_flow(steps).errors]


GOOD = [
    "Order {{ order.id }} for {{ order.customer.name }}",
    "{% for line in order.lines %}{{ line.parameters.text }} x{{ line.quantity }}{% endfor %}",
    "{{ order.data.anything.below.data }} {{ order.lines[0].parameters.free }}",
    "Job {{ steps.mes.response.body.jobId }} ({{ steps.mes.response.headers['content-type'] }})",
    "{{ secrets.MES_TOKEN }} {{ step.id }} {{ flow.name }} {{ order.status | upper }}",
    "{% if error is defined %}{{ order.id }}{% endif %}{% set n = 3 %}{{ n }}",
]


@pytest.mark.parametrize("subject", GOOD)
def test_good_templates_validate(subject: str) -> None:
    assert problems([rest("mes", onSuccess="mail"), email("mail", subject)]) == []


BAD = [
    ("{{ order.custmer.name }}", 'order has no "custmer" (did you mean "customer"?)'),
    ("{{ order.id ", "template syntax error on line 1"),
    ("{% if order.id %}open", "template syntax error"),
    ("{{ ordr.id }}", 'there is no "ordr" here (did you mean "order"?)'),
    ("{{ steps.mse.response }}", 'no step has stepDefinitionId "mse" (did you mean "mes"?)'),
    ("{{ steps.late.response }}", 'step "late" cannot have run before this one'),
    ("{{ steps.mes.respons.body }}", 'steps.mes has no "respons" (did you mean "response"?)'),
    ("{{ steps.mes.response.header }}", 'has no "header" (did you mean "headers"?)'),
    ("{{ error.message }}", "error is set only on an error path"),
    ("{% for l in order.lines %}{{ l.paramters }}{% endfor %}", 'has no "paramters"'),
    ("{{ order.lines.text }}", 'is a list: it has no "text" (use [0])'),
    ("{{ steps.mes.callback }}", 'steps.mes has no "callback"'),
]


@pytest.mark.parametrize(("subject", "says"), BAD)
def test_bad_templates_are_located(subject: str, says: str) -> None:
    found = problems(
        [rest("mes", onSuccess="mail"), email("mail", subject, onSuccess="late"), rest("late")]
    )
    assert len(found) == 1, found
    pointer, message = found[0]
    assert pointer == "/1/options/subject"
    assert says in message


def test_error_is_readable_on_an_error_path_and_what_follows_it() -> None:
    steps = [
        rest("mes", onError="tell"),
        email("tell", "{{ error.message }}", onSuccess="after"),
        email("after", "{{ error.stepDefinitionId }}"),
    ]
    assert problems(steps) == []


def test_a_step_on_some_path_counts() -> None:
    steps = [
        choice("route", 'order.data.country == "BE"', "eu", "after"),
        rest("eu", onSuccess="after"),
        email("after", "{% if steps.eu is defined %}{{ steps.eu.response.status }}{% endif %}"),
    ]
    assert problems(steps) == []


def test_choices_are_checked_and_located() -> None:
    steps = [
        rest("mes", onSuccess="route"),
        {
            "stepDefinitionId": "route",
            "type": "choice",
            "onSuccess": "done",
            "options": {
                "rules": [
                    {"when": "order.dta.country == 'BE'", "next": "done"},
                    {"when": "steps.mes.response.body.ok", "next": "dnoe"},
                    {"when": "secrets.X == 'a'", "next": "done"},
                    {"when": "order.id ** 2", "next": "done"},
                ],
                "otherwise": "route",
            },
        },
        email("done", "ok"),
    ]
    found = dict(problems(steps))
    assert (
        'no step has stepDefinitionId "dnoe" (did you mean "done"?)'
        in found["/1/options/rules/1/next"]
    )
    assert "points at itself" in found["/1/options/otherwise"]
    assert 'order has no "dta" (did you mean "data"?)' in found["/1/options/rules/0/when"]
    assert "a choice cannot read secrets" in found["/1/options/rules/2/when"]
    assert "** is not allowed" in found["/1/options/rules/3/when"]
    assert "onSuccess is not used" in found["/1/onSuccess"]


def test_a_loop_of_choices_is_refused() -> None:
    steps = [choice("a", "true", "b", "end"), choice("b", "true", "a", "end"), email("end", "x")]
    assert any("cycle: a -> b -> a" in m for _, m in problems(steps))


def test_a_flow_with_problems_is_refused_whole() -> None:
    result = load_flow([email("a", "{{ order.custmer }}", onSuccess="b"), email("b", "{{ ordr }}")])
    assert result.flow is None
    assert [p.pointer for p in result.errors] == ["/0/options/subject", "/1/options/subject"]


@pytest.mark.parametrize(
    "expression",
    [
        'order.data.country == "BE"',
        'order.data.country in ["BE", "NL"] and not order.data.total < 100',
        "1 < order.lines[0].quantity <= 2",
        'steps["mes"].response.body.jobId != "J-8" or order.data.rush',
        "order.data.rush is defined or error.message is undefined",
        "order.lines[0].parameters.material",
        "order.data.rush == true",
        "order.lines[3].quantity > 1",
        "error.message == 'x'",
        "order.data.country > 3",
    ],
)
def test_the_common_subset_says_what_jinja_says(expression: str) -> None:
    """Paths, comparisons and and/or/not are evaluated without Jinja: same value, same error."""
    direct = expressions._direct(parse(expression))
    assert direct is not None, "evaluated directly"
    jinja = SANDBOX.compile_expression(expression, undefined_to_none=False)

    def outcome(evaluate: Any) -> object:
        try:
            return bool(evaluate())
        except Exception as exc:
            return type(exc).__name__ if "undefined" not in str(exc) else str(exc)

    ours = outcome(lambda: direct(CONTEXT))
    theirs = outcome(lambda: jinja(scoped_context(CONTEXT)))
    if ours == "ExpressionError":  # a TypeError of Python, as Jinja's
        ours = "TypeError"
    assert ours == theirs


@pytest.mark.parametrize(
    ("when", "full"),
    [
        ('order.data.country == "BE"', False),
        ('order.lines[0].parameters.material == "gold" and order.status != "x"', False),
        ('steps.a.response.status == 200 or order.customer.name == "Ada"', False),
        ("order.statusHistory | length > 1", True),
        ('order.health.state == "unhealthy"', True),
        ("order.execution.attempts | length > 3", True),
        ('order["statusHistory"] | length > 1', True),
    ],
)
def test_the_worker_reads_the_orders_history_only_for_choices_that_read_it(
    when: str, full: bool
) -> None:
    """A step that leads to a choice reads the order for it; its attempts and status history
    only when a choice on the way reads them (the order's full read costs more)."""
    steps = [rest("a", onSuccess="first"), choice("first", "true", "second", "b"), rest("b")]
    result = load_flow([*steps, choice("second", when, "b", "b")])
    assert result.flow is not None, result.errors
    assert result.flow.choices_read_history("a") is full
    assert result.flow.choices_read_history("b") is False  # leads to no choice
