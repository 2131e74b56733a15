"""The gateway's Prometheus metrics (`GET /metrics`), correct with several workers.

One worker keeps its values in its own registry. With several (GATEWAY_WORKERS > 1),
prometheus-client's multiprocess mode: every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (`python -m gateway` makes one when the operator has not), and whichever
worker answers /metrics adds up every worker's files. Gauges of per-worker state report the
highest value among live workers (breaker_state) or their sum (db_pool_in_use).

Labels carry route templates, provider names, catalog model ids and provider base URLs: never a
key, a prompt or a user's token.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from gateway.breaker import State

BREAKER_STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
# A request that matched no route: one label value, whatever path was asked for.
UNMATCHED = "unmatched"

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_PROVIDER = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        """`multiprocess_dir`: PROMETHEUS_MULTIPROC_DIR, when the workers share one."""
        self._multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "llm_gateway_requests", "HTTP requests answered, by route and status.", ["endpoint", "status"],
            registry=registry,
        )  # fmt: skip
        self.provider_calls = Counter(
            "llm_gateway_provider_calls",
            "Attempts at a provider, by outcome: ok, error, or skipped (breaker open, no key).",
            ["provider", "model", "outcome"],
            registry=registry,
        )
        self.provider_latency = Histogram(
            "llm_gateway_provider_latency_seconds", "Time of each provider call that went out.", ["provider"],
            buckets=_PROVIDER, registry=registry,
        )  # fmt: skip
        self.overhead = Histogram(
            "llm_gateway_overhead_seconds",
            "Time an execute request spends in the gateway: its whole time less provider calls and retry waits.",
            buckets=_FAST,
            registry=registry,
        )
        self.retries = Counter(
            "llm_gateway_retries", "Attempts made again at the same target.", ["provider"], registry=registry
        )
        self.fallbacks = Counter(
            "llm_gateway_fallbacks", "Requests handed from a failed target to its next fallback.", ["provider"],
            registry=registry,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "llm_gateway_breaker_state", "Circuit breaker per provider base URL: 0 closed, 1 half-open, 2 open.",
            ["target"], multiprocess_mode="livemax", registry=registry,
        )  # fmt: skip
        self.usage_batch_size = Histogram(
            "llm_gateway_usage_batch_size", "Usage rows per group-committed insert.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 100), registry=registry,
        )  # fmt: skip
        self.usage_commit = Histogram(
            "llm_gateway_usage_commit_seconds", "Time to insert and commit one batch of usage rows.",
            buckets=_FAST, registry=registry,
        )  # fmt: skip
        self.db_pool_in_use = Gauge(
            "llm_gateway_db_pool_in_use", "Database connections in use.", multiprocess_mode="livesum",
            registry=registry,
        )  # fmt: skip
        config_cache = Counter(
            "llm_gateway_config_cache",
            "Configuration cache lookups (hit, miss) and entries dropped by change notifications (invalidated).",
            ["result"],
            registry=registry,
        )
        # Bound once: the cache counts on every call.
        self.config_cache_hit = config_cache.labels("hit")
        self.config_cache_miss = config_cache.labels("miss")
        self.config_cache_invalidated = config_cache.labels("invalidated")

    def set_breaker_state(self, target: str, state: State) -> None:
        self.breaker_state.labels(target).set(BREAKER_STATE_VALUES[state])

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type: every worker's values when they share a directory."""
        registry = self.registry
        if self._multiprocess_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def worker_stopped(self, pid: int) -> None:
        """Drop a stopping worker's live gauges, so they no longer count in the others' answers."""
        if self._multiprocess_dir is not None:
            mark_process_dead(pid, self._multiprocess_dir)  # type: ignore[no-untyped-call]
