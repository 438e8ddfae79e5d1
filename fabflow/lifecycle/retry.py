"""Retry policy as data: how many attempts, and how long to wait before each.

There is one policy type. A flow's ``retry`` extension (milliseconds, see
``fabflow.flows.model.RetryOptions``) converts into it; the settings' defaults do too.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabflow.settings import Settings

# The longest we honour a receiver's Retry-After: beyond this the error path is better.
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` in all (1 = no retry); delays in seconds, growing by ``backoff``."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0

    @classmethod
    def from_ms(
        cls, max_attempts: int, initial_delay_ms: float, backoff: float, max_delay_ms: float
    ) -> RetryPolicy:
        """A policy from the millisecond figures flows and settings are written in."""
        return cls(max_attempts, initial_delay_ms / 1000, backoff, max_delay_ms / 1000)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The default policy: a step without a ``retry`` of its own (FABFLOW_RETRY_*)."""
        return cls.from_ms(
            settings.retry_max_attempts,
            settings.retry_initial_delay_ms,
            settings.retry_backoff,
            settings.retry_max_delay_ms,
        )

    def delay_before(self, next_attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number ``next_attempt`` (2 = the first retry)."""
        delay = min(self.initial_delay * self.backoff ** (next_attempt - 2), self.max_delay)
        if retry_after is not None:
            # The receiver knows best when it can take the request again.
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay

    def allows(self, next_attempt: int) -> bool:
        return next_attempt <= self.max_attempts

    def covers(self) -> float:
        """Seconds from the first attempt's failure to the last attempt (its waits summed)."""
        return sum(self.delay_before(n) for n in range(2, self.max_attempts + 1))


# An email is worth waiting for: a mail server down for an hour must not lose it. A send-email
# step without a ``retry`` of its own keeps the default's first delay and growth, and at least
# this many attempts and this longest wait, so its retries cover about 77 minutes (15
# attempts from a 1 s first delay, doubling, capped at 15 minutes). Every attempt of a visit
# sends the same Message-ID, so a retry after a lost answer is not a second email.
EMAIL_MIN_ATTEMPTS = 15
EMAIL_MAX_DELAY_S = 900.0


def default_for(step_type: str, default: RetryPolicy) -> RetryPolicy:
    """The policy of a step of ``step_type`` that has no ``retry`` of its own."""
    if step_type != "send-email":
        return default
    return RetryPolicy(
        max(default.max_attempts, EMAIL_MIN_ATTEMPTS),
        default.initial_delay,
        default.backoff,
        max(default.max_delay, EMAIL_MAX_DELAY_S),
    )
