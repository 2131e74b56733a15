"""When to try a provider call again, and how long to wait first.

A retryable failure (see ProviderError.retryable) is tried again up to PROVIDER_MAX_RETRIES
times, after an exponential backoff with full jitter (a random wait up to 0.5 s, 1 s, 2 s, ...),
or after the provider's Retry-After when it asks for longer. No wait is made that would end past
the request's deadline, and no attempt starts past it.
"""

from __future__ import annotations

import random
import time

from gateway.errors import ProviderError, ProviderRateLimited

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0


class Deadline:
    """A request's end, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(self._end - time.monotonic(), 0.0)


def wait_before_retry(error: ProviderError, retry: int, deadline: Deadline) -> float | None:
    """Seconds to wait before retry number `retry` (1, 2, ...), or None if the error is not worth
    retrying or the wait would end past the deadline."""
    if not error.retryable:
        return None
    wait = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (retry - 1)))  # noqa: S311
    if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
        wait = max(wait, float(error.retry_after))
    if wait >= deadline.remaining():
        return None
    return wait
