"""The provider registry, `complete` (one chat completion), and what it shares with streamed
completions (gateway/providers/streaming.py): request preparation and error mapping."""

import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from gateway.errors import (
    BadRequest,
    ConfigError,
    GatewayError,
    ProviderBlocked,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    UnsupportedSetting,
)
from gateway.outbound_guard import BlockReason, OutboundBlocked, read_capped
from gateway.providers import anthropic, google, openai_compatible
from gateway.providers.types import Adapter, Completion, CompletionRequest, Setting, WireRequest

ADAPTERS: Mapping[str, Adapter] = {
    "anthropic": anthropic.ADAPTER,
    "openai": openai_compatible.OPENAI,
    "mistral": openai_compatible.MISTRAL,
    "google": google.ADAPTER,
    "meta": openai_compatible.META,
}
PROVIDERS: tuple[str, ...] = tuple(ADAPTERS)
# An organization's own OpenAI-compatible endpoint: "custom:<name>".
CUSTOM_PREFIX = "custom:"
DEFAULT_BASE_URLS: Mapping[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta",
    "meta": "https://api.llama.com/compat/v1",
}

REDACTED = "[redacted]"
# Answers after which the same request may succeed: timeout, rate limit, server errors, and
# Anthropic's 529 overloaded (Gemini's UNAVAILABLE and RESOURCE_EXHAUSTED come as 503 and 429).
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
_MAX_DETAIL = 500
# Providers echo keys partly masked ("sk-proj-****...6XcA") or cut; any token sharing
# this many consecutive characters with the key, or masked with asterisks, is removed.
_KEY_FRAGMENT = 8
_TOKEN = re.compile(r"[^\s\"'`,;()\[\]{}<>]+")
_MASKED = "***"
_PARSE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)
_NOT_JSON = object()
_JSON = msgspec.json.Encoder()


@dataclass(frozen=True)
class PreparedCall:
    """A validated request in `provider`'s wire format, not sent yet."""

    provider: str
    adapter: Adapter
    wire: WireRequest
    # An organization's own endpoint: its answers are read with a size cap.
    custom: bool


def prepare(provider: str, base_url: str, api_key: str, request: CompletionRequest) -> PreparedCall:
    """Validate and build a call to `provider`; raises ConfigError, BadRequest or UnsupportedSetting.
    A custom provider ("custom:<name>") speaks OpenAI's format."""
    custom = provider.startswith(CUSTOM_PREFIX)
    adapter = openai_compatible.OPENAI if custom else ADAPTERS.get(provider)
    if adapter is None:
        raise ConfigError(f"unknown LLM provider {provider!r}")
    # A custom provider has no system key; its organization may have stored none (a local model).
    if not api_key and not custom:
        raise ConfigError(f"{provider}: no API key configured")
    _check_request(request)
    params = _params(provider, adapter.settings, request.settings)
    wire = adapter.build(base_url.rstrip("/"), api_key, request, params)
    return PreparedCall(provider, adapter, wire, custom)


async def complete(
    client: aiohttp.ClientSession,
    provider: str,
    base_url: str,
    api_key: str,
    request: CompletionRequest,
    *,
    seconds: float | None = None,
) -> Completion:
    """Run one chat completion on `provider`, using the client's own timeouts and, when given, at
    most `seconds` in all.

    Everything is validated before any I/O. Raises ConfigError, BadRequest,
    UnsupportedSetting, ProviderBlocked (a custom provider's endpoint the SSRF guard refused,
    before anything is sent), ProviderError, ProviderRateLimited or ProviderTimeout, and
    nothing else; no message carries the API key or any request header. For a custom provider
    `client` must be the guarded one.
    """
    call = prepare(provider, base_url, api_key, request)
    headers = {**call.wire.headers, "content-type": "application/json"}
    try:
        # encoded=True: the URL goes out exactly as the adapter quoted it (a model id's ":" or "?"
        # stays escaped inside its path segment).
        async with client.post(
            URL(call.wire.url, encoded=True),
            data=_JSON.encode(call.wire.body),
            headers=headers,
            allow_redirects=False,
            timeout=_within(client.timeout, seconds),
        ) as response:
            # A tenant's endpoint may answer with anything; the catalog's are trusted to be sane.
            content = await (read_capped(response) if call.custom else response.read())
    except (OutboundBlocked, TimeoutError, aiohttp.ClientError) as exc:
        raise transport_error(provider, exc) from exc

    status = response.status
    if not 200 <= status < 300:
        raise http_error(call, api_key, response, content)
    body = _read_json(content)
    if body is _NOT_JSON:
        raise ProviderError(f"{provider}: response is not JSON (HTTP {status})")
    try:
        return call.adapter.parse(body, request.model)
    except _PARSE_ERRORS as exc:
        raise ProviderError(_message(provider, f"unexpected response: {_explain(exc)}", api_key)) from None


def transport_error(provider: str, exc: OutboundBlocked | TimeoutError | aiohttp.ClientError) -> GatewayError:
    """What a failure to send or to read an answer means for the caller."""
    if isinstance(exc, OutboundBlocked):
        if exc.reason in (BlockReason.REDIRECT, BlockReason.BODY_TOO_LARGE):  # it was sent and answered
            return ProviderError(f"{provider}: {exc.reason.value}")
        return ProviderBlocked(f"{provider}: the endpoint is refused: {exc.reason.value}")
    # aiohttp's timeouts (connect, pool, read) are TimeoutErrors, some also ClientErrors.
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"{provider}: request timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigError(f"{provider}: invalid base URL")
    # Refused, reset, closed mid-answer: worth another try.
    return ProviderError(f"{provider}: request failed ({type(exc).__name__})", retryable=True)


def http_error(call: PreparedCall, api_key: str, response: aiohttp.ClientResponse, content: bytes) -> ProviderError:
    """The provider's non-2xx answer, its key scrubbed from the message."""
    provider, adapter, status = call.provider, call.adapter, response.status
    body = _read_json(content)
    detail = None if body is _NOT_JSON else adapter.error_message(body)
    message = _message(provider, f"{detail or response.reason or 'error'} (HTTP {status})", api_key)
    if status == 429:
        retry_after = _parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and adapter.retry_after is not None and body is not _NOT_JSON:
            retry_after = adapter.retry_after(body)
        return ProviderRateLimited(message, retry_after)
    return ProviderError(message, retryable=status in RETRYABLE_STATUSES, upstream_status=status)


def _within(timeout: aiohttp.ClientTimeout, seconds: float | None) -> aiohttp.ClientTimeout:
    """The client's timeouts, with a total of at most `seconds` (what is left of a deadline)."""
    if seconds is None:
        return timeout
    total = seconds if timeout.total is None else min(timeout.total, seconds)
    return aiohttp.ClientTimeout(total=total, connect=timeout.connect, sock_read=timeout.sock_read)


def _check_request(request: CompletionRequest) -> None:
    if not isinstance(request.model, str) or not request.model.strip():
        raise BadRequest("a model is required")
    if not request.messages:
        raise BadRequest("at least one message is required")
    for message in request.messages:
        if message.role not in ("user", "assistant"):
            raise BadRequest(f"message role must be 'user' or 'assistant', got {message.role!r}")
        # Providers reject empty or whitespace-only turns; catching it here keeps it a 400.
        if not isinstance(message.content, str) or not message.content.strip():
            raise BadRequest("message content must be a non-empty string")
    if request.system is not None and not isinstance(request.system, str):
        raise BadRequest("system prompt must be a string")
    if not isinstance(request.settings, Mapping):
        raise BadRequest("settings must be an object")


def _params(provider: str, specs: Mapping[str, Setting], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate settings against the provider and rename them to its parameter names."""
    params: dict[str, Any] = {}
    for name, value in settings.items():
        if value is None:
            continue
        spec = specs.get(name)
        if spec is None:
            raise UnsupportedSetting(f"{provider} does not support the setting {name!r}")
        params[spec.wire] = _checked(provider, name, spec, value)
    return params


def _checked(provider: str, name: str, spec: Setting, value: Any) -> Any:
    if spec.kind == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list | tuple) or not stops or not all(isinstance(s, str) and s for s in stops):
            raise BadRequest(f"setting {name!r} must be a non-empty string or list of non-empty strings")
        if spec.max_items is not None and len(stops) > spec.max_items:
            raise UnsupportedSetting(f"{provider} accepts at most {spec.max_items} stop sequences, got {len(stops)}")
        return list(stops)
    integer = spec.kind == "integer"
    # bool is an int subclass, and JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise BadRequest(f"setting {name!r} must be {'an integer' if integer else 'a number'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"setting {name!r} must be a finite number")
    too_low = spec.minimum is not None and value < spec.minimum
    too_high = spec.maximum is not None and (value >= spec.maximum if spec.maximum_exclusive else value > spec.maximum)
    if too_low or too_high:
        raise UnsupportedSetting(f"{provider} accepts {name} {_describe_range(spec)}, got {value}")
    return value


def _describe_range(spec: Setting) -> str:
    def show(bound: float) -> str:
        return str(int(bound)) if float(bound).is_integer() else str(bound)

    bounds = []
    if spec.minimum is not None:
        bounds.append(f"at least {show(spec.minimum)}")
    if spec.maximum is not None:
        bounds.append(f"{'below' if spec.maximum_exclusive else 'at most'} {show(spec.maximum)}")
    return " and ".join(bounds)


def _read_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:  # includes JSONDecodeError and UnicodeDecodeError
        return _NOT_JSON


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    return str(exc) or type(exc).__name__


def _message(provider: str, detail: str, api_key: str) -> str:
    return f"{provider}: {_scrub(detail, api_key)[:_MAX_DETAIL]}"


def _scrub(text: str, api_key: str) -> str:
    text = text.replace(api_key, REDACTED)
    fragments = {api_key[i : i + _KEY_FRAGMENT] for i in range(len(api_key) - _KEY_FRAGMENT + 1)}

    def redact(match: re.Match[str]) -> str:
        token = match.group()
        leaks = _MASKED in token or any(
            token[i : i + _KEY_FRAGMENT] in fragments for i in range(len(token) - _KEY_FRAGMENT + 1)
        )
        return REDACTED if leaks else token

    return _TOKEN.sub(redact, text)


def _parse_retry_after(value: str | None) -> int | None:
    """Seconds to wait from a retry-after header: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))
    return math.ceil(seconds) if math.isfinite(seconds) and seconds >= 0 else None
