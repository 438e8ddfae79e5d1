"""Retry policy as data: how many attempts, and how long to wait before each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    def from_flow(cls, retry: Any, default: RetryPolicy) -> RetryPolicy:
        """The policy of a step: its ``retry`` extension (times in ms) or the default."""
        if retry is None:
            return default
        return cls(
            max_attempts=int(_get(retry, "max_attempts", "maxAttempts", default.max_attempts)),
            initial_delay=float(
                _get(retry, "initial_delay", "initialDelay", default.initial_delay * 1000)
            )
            / 1000,
            backoff=float(_get(retry, "backoff", "backoff", default.backoff)),
            max_delay=float(_get(retry, "max_delay", "maxDelay", default.max_delay * 1000)) / 1000,
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


def _get(obj: Any, attr: str, key: str, default: Any) -> Any:
    value = obj.get(key, default) if isinstance(obj, dict) else getattr(obj, attr, default)
    return default if value is None else value
