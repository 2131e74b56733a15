"""Circuit breakers, one per provider base URL in each worker.

After PROVIDER_BREAKER_FAILURES consecutive retryable failures within
PROVIDER_BREAKER_WINDOW_SECONDS a target opens for PROVIDER_BREAKER_COOLDOWN_SECONDS: calls to it
are skipped at once (no request, no usage row). Then it is half-open: one trial call is let
through, and its outcome closes the breaker or opens it again. A non-retryable answer (a bad
request, a rejected key) shows the provider up and counts as a success here.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class _Breaker:
    failures: deque[float] = field(default_factory=deque)
    opened_at: float | None = None
    # While a half-open trial call is out, others are skipped; a trial that never reports (its
    # request ended before the call) lets another through after a cooldown.
    trial_until: float | None = None


class Breakers:
    def __init__(self, failures: int, window: float, cooldown: float) -> None:
        self._failures = failures
        self._window = window
        self._cooldown = cooldown
        self._targets: dict[str, _Breaker] = {}

    def state(self, target: str) -> State:
        breaker = self._targets.get(target)
        if breaker is None or breaker.opened_at is None:
            return "closed"
        return "open" if time.monotonic() < breaker.opened_at + self._cooldown else "half_open"

    def states(self) -> dict[str, State]:
        return {target: self.state(target) for target in sorted(self._targets)}

    def allow(self, target: str) -> bool:
        """Whether a call to `target` may go out now; a half-open target lets one trial through."""
        state = self.state(target)
        if state == "closed":
            return True
        breaker, now = self._targets[target], time.monotonic()
        if state == "open" or (breaker.trial_until is not None and now < breaker.trial_until):
            return False
        breaker.trial_until = now + self._cooldown
        return True

    def record(self, target: str, *, failed: bool) -> None:
        """The outcome of a call that went out: `failed` for a retryable failure."""
        breaker = self._targets.setdefault(target, _Breaker())
        breaker.trial_until = None
        now = time.monotonic()
        if not failed:
            breaker.failures.clear()
            breaker.opened_at = None
            return
        if breaker.opened_at is not None:  # the half-open trial failed
            breaker.opened_at = now
            return
        breaker.failures.append(now)
        while breaker.failures and breaker.failures[0] < now - self._window:
            breaker.failures.popleft()
        if len(breaker.failures) >= self._failures:
            breaker.opened_at = now
            breaker.failures.clear()
