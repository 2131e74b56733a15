"""The one execution pipeline every wire shape calls: resolution, then attempts at the configured
target and its fallbacks, each attempt with its budget reservation and its usage row, until one
is served, the failure is not worth another attempt, or the request's deadline passes. Routes
only translate their wire format to a `Call` and the outcome back."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import aiohttp

from gateway import budget
from gateway.data import Caller, DataAccess, EffectiveConfig, LlmTarget, ResolvedCall, UsageRecord
from gateway.errors import (
    ConfigError,
    GatewayError,
    ProviderBlocked,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from gateway.providers import ChatMessage, CompletionRequest
from gateway.retries import Deadline, wait_before_retry
from gateway.services import Services
from gateway.usage import BilledCompletion, BilledStream, complete_and_record, open_billed_stream

# One JSON line per execute call, for log pipelines: its own logger, so operators can route it.
request_log = logging.getLogger("gateway.requests")


@dataclass(frozen=True)
class Call:
    organization_id: uuid.UUID
    messages: tuple[ChatMessage, ...]
    system: str | None = None
    processor_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    operation_id: str | None = None
    # Shared by the usage rows of every attempt (X-Request-Id).
    request_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    # Less than GATEWAY_REQUEST_DEADLINE_SECONDS, if the caller asks for it.
    timeout_seconds: float | None = None
    # A model named by the caller (profile/<name>, <provider>/<model_name>) instead of a processor.
    model: str | None = None
    # Settings the caller sets for this call, over every target's own.
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    provider: str
    model: str
    outcome: Literal["ok", "error", "skipped"]
    error_code: str | None
    response_time_ms: int


@dataclass
class _Progress:
    """A request's attempts so far, and the time spent at providers and in retry waits (what is
    not the gateway's own overhead)."""

    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    away_seconds: float = 0.0


# What an attempt that a provider served gives: a completion billed, or a stream under way.
Served = TypeVar("Served", BilledCompletion, BilledStream)
_Sent = TypeVar("_Sent", BilledCompletion, BilledStream, covariant=True)


class _Send(Protocol[_Sent]):
    """complete_and_record or open_billed_stream: one attempt at a provider, its row billed."""

    def __call__(
        self,
        client: aiohttp.ClientSession,
        data: DataAccess,
        row: UsageRecord,
        base_url: str,
        api_key: str,
        request: CompletionRequest,
        *,
        seconds: float | None = None,
    ) -> Awaitable[_Sent]: ...


@dataclass(frozen=True)
class CallOutcome(Generic[Served]):
    config: EffectiveConfig
    # The target that served: the configured one, or one of its fallbacks.
    target: LlmTarget
    billed: Served
    attempts: tuple[Attempt, ...]


async def execute(services: Services, caller: Caller, call: Call) -> CallOutcome[BilledCompletion]:
    """Run `call` to its completion, billed."""
    return await _logged(services, caller, call, complete_and_record)


async def execute_stream(services: Services, caller: Caller, call: Call) -> CallOutcome[BilledStream]:
    """Run `call` until a provider is streaming its answer: retries and fallbacks happen only
    before then, while nothing has reached the caller. The stream's row is written by its
    `finish`, which the caller must await however the stream ends."""
    return await _logged(services, caller, call, open_billed_stream)


async def _logged(services: Services, caller: Caller, call: Call, send: _Send[Served]) -> CallOutcome[Served]:
    """Run `call`, and log one JSON line about it (ids, provider, model, status, duration, number
    of attempts: never a key, a prompt or a completion)."""
    started = time.perf_counter()
    progress = _Progress()
    line: dict[str, object] = {
        "request_id": str(call.request_id),
        "organization_id": str(call.organization_id),
        "processor_id": None if call.processor_id is None else str(call.processor_id),
    }
    try:
        outcome = await _execute(services, caller, call, progress, send)
    except GatewayError as exc:
        line |= {"status": exc.status, "error_code": exc.code, "attempts": len(exc.attempts or ())}
        raise
    except Exception:
        line |= {"status": 500, "error_code": "internal_error", "attempts": 0}
        raise
    else:
        line |= {
            "provider": outcome.target.provider,
            "model": outcome.target.model,
            "status": 200,
            "attempts": len(outcome.attempts),
        }
        return outcome
    finally:
        elapsed = time.perf_counter() - started
        services.metrics.overhead.observe(max(elapsed - progress.away_seconds, 0.0))
        if request_log.isEnabledFor(logging.INFO):
            line["duration_ms"] = round(elapsed * 1000)
            request_log.info(json.dumps(line))


async def _execute(
    services: Services, caller: Caller, call: Call, progress: _Progress, send: _Send[Served]
) -> CallOutcome[Served]:
    try:
        return await _attempt_until_served(services, caller, call, progress, send)
    except GatewayError as exc:
        # Whatever ends the request (the provider, a budget refusal on a retry, the database),
        # its answer lists the attempts already made and billed.
        if progress.attempts:
            exc.attempts = [dataclasses.asdict(attempt) for attempt in progress.attempts]
        raise


async def _attempt_until_served(
    services: Services, caller: Caller, call: Call, progress: _Progress, send: _Send[Served]
) -> CallOutcome[Served]:
    """The configured target first, then each fallback in order, until one serves the call."""
    deadline = Deadline(min(services.settings.request_deadline, call.timeout_seconds or math.inf))
    resolved = await services.config_cache.resolve_call(
        services.data_access, caller, call.organization_id, call.processor_id, call.run_id, call.model
    )
    targets = resolved.config.targets
    for index, target in enumerate(targets):
        if deadline.remaining() <= 0:
            raise ProviderTimeout("the request's deadline passed before a provider answered")
        try:
            billed = await _attempt_target(services, caller, call, resolved, target, deadline, progress, send)
        # A failure of this target (down, key rejected, not configured, endpoint refused) is worth
        # the next one; a request the provider refused as such would be refused by every other.
        except (ProviderError, ConfigError, ProviderBlocked) as exc:
            if index == len(targets) - 1 or (isinstance(exc, ProviderError) and exc.request_refused):
                raise
            services.metrics.fallbacks.labels(target.provider).inc()
            continue
        return CallOutcome(resolved.config, target, billed, tuple(progress.attempts))
    raise AssertionError("unreachable: a configuration always has a target")


async def _attempt_target(
    services: Services,
    caller: Caller,
    call: Call,
    resolved: ResolvedCall,
    target: LlmTarget,
    deadline: Deadline,
    progress: _Progress,
    send: _Send[Served],
) -> Served:
    """The attempts at one target: the first, then retries of retryable failures."""
    settings, data, metrics = services.settings, services.data_access, services.metrics
    attempts = progress.attempts
    # The system key also covers an organization key deleted since the configuration was read.
    api_key = resolved.org_api_keys.get(target.provider) or settings.api_keys.get(target.provider, "")
    call_settings = {**target.settings, **call.settings} if call.settings else target.settings
    request = CompletionRequest(target.model, call.messages, call.system, call_settings)
    # A custom provider's endpoint comes with its configuration, and goes through the guarded client.
    base_url = target.base_url or settings.base_urls.get(target.provider, "")
    client = services.custom_http_client if target.base_url else services.http_client
    retries = 0
    while True:
        seconds = deadline.remaining()
        if seconds <= 0:
            raise ProviderTimeout("the request's deadline passed before the provider answered")
        if not services.breakers.allow(base_url):
            attempts.append(Attempt(target.provider, target.model, "skipped", ProviderUnavailable.code, 0))
            metrics.provider_calls.labels(target.provider, target.model, "skipped").inc()
            metrics.set_breaker_state(base_url, services.breakers.state(base_url))
            raise ProviderUnavailable(f"{target.provider} is failing; calls to it are paused for a while")
        to_send, reservation_id = request, None
        if resolved.hard_budget:
            to_send, reservation_id = await budget.reserve(
                data, call.organization_id, call.processor_id, target.provider, request, seconds
            )
        row = UsageRecord(
            organization_id=call.organization_id,
            provider=target.provider,
            # The catalog's id, which the database prices; the provider may answer with a dated alias.
            model_name=target.model,
            user_id=caller.user_id if caller.role == "authenticated" else None,
            processor_id=call.processor_id,
            run_id=call.run_id,
            operation_id=call.operation_id,
            reservation_id=reservation_id,
            request_id=call.request_id,
            attempt=len(attempts) + 1,
        )
        started = time.perf_counter()
        try:
            billed = await send(client, data, row, base_url, api_key, to_send, seconds=seconds)
        # No key for this provider, no such provider, or an endpoint the SSRF guard refused: nothing was sent.
        except (ConfigError, ProviderBlocked) as exc:
            attempts.append(Attempt(target.provider, target.model, "skipped", exc.code, 0))
            metrics.provider_calls.labels(target.provider, target.model, "skipped").inc()
            raise
        except ProviderError as exc:
            seconds = time.perf_counter() - started
            progress.away_seconds += seconds
            services.breakers.record(base_url, failed=exc.retryable)
            attempts.append(Attempt(target.provider, target.model, "error", exc.code, round(seconds * 1000)))
            _count_call(services, target, base_url, "error", seconds)
            retries += 1
            wait = wait_before_retry(exc, retries, deadline) if retries <= settings.max_retries else None
            if wait is None:
                raise
            metrics.retries.labels(target.provider).inc()
            progress.away_seconds += wait
            await asyncio.sleep(wait)
            continue
        services.breakers.record(base_url, failed=False)
        progress.away_seconds += billed.provider_seconds
        attempts.append(Attempt(target.provider, target.model, "ok", None, billed.response_time_ms))
        _count_call(services, target, base_url, "ok", billed.provider_seconds)
        return billed


def _count_call(services: Services, target: LlmTarget, base_url: str, outcome: str, seconds: float) -> None:
    metrics = services.metrics
    metrics.provider_calls.labels(target.provider, target.model, outcome).inc()
    metrics.provider_latency.labels(target.provider).observe(seconds)
    metrics.set_breaker_state(base_url, services.breakers.state(base_url))


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
