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
