"""An email survives a mail server down for an hour; other steps keep the settings' policy."""

from __future__ import annotations

import json

from fabflow.flows.validate import parse_flow
from fabflow.lifecycle.retry import RetryPolicy, default_for
from fabflow.settings import Settings


def test_an_emails_default_retries_cover_an_hour_of_outage() -> None:
    default = RetryPolicy.from_settings(Settings())
    assert default.covers() < 60  # the settings' policy: seconds, right for a receiver
    email = default_for("send-email", default)
    assert email.covers() >= 3600
    assert email.delay_before(email.max_attempts) <= 900  # never more than 15 minutes apart
    assert default_for("consume-rest-api", default) == default


def test_a_step_with_its_own_retry_keeps_it() -> None:
    flow = parse_flow(
        json.dumps(
            [
                {
                    "stepDefinitionId": "mail",
                    "type": "send-email",
                    "successStatus": "Sent",
                    "options": {"recipients": ["a@example.com"], "subject": "s", "message": "b"},
                    "retry": 2,
                },
                {
                    "stepDefinitionId": "mail2",
                    "type": "send-email",
                    "successStatus": "Sent",
                    "options": {"recipients": ["a@example.com"], "subject": "s", "message": "b"},
                },
            ]
        )
    )
    default = RetryPolicy.from_settings(Settings())
    assert flow.step("mail").retry_policy(default).max_attempts == 2
    assert flow.step("mail2").retry_policy(default).max_attempts == 15
