"""Provider-neutral request/response types and the shape of a provider adapter."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    system: str | None
    # Keys among: temperature, top_p, top_k, max_tokens, stop (str or list[str]),
    # presence_penalty, frequency_penalty, seed. A None value means "not set".
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # ALL input tokens, cached ones included
    output_tokens: int  # ALL output tokens, reasoning/thinking included
    cache_read_tokens: int = 0  # subset of input_tokens billed at the cache-read rate
    cache_write_tokens: int = 0  # subset of input_tokens billed at the cache-write rate
    reasoning_tokens: int = 0  # subset of output_tokens (informational)

    def __post_init__(self) -> None:
        # Billing trusts these numbers, so a provider sending junk must fail loudly
        # (dispatch turns this ValueError into a ProviderError).
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"token count {name} is not a non-negative integer")
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cached token counts exceed input tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning tokens exceed output tokens")


@dataclass(frozen=True)
class Completion:
    content: str
    model: str  # model id as the provider reported it
    usage: Usage

    def __post_init__(self) -> None:
        if not isinstance(self.content, str) or not isinstance(self.model, str):
            raise ValueError("content and model must be strings")


@dataclass(frozen=True)
class Setting:
    """How one gateway setting maps onto a provider's request, and its accepted range."""

    wire: str  # the provider's parameter name
    kind: Literal["number", "integer", "stop"]
    minimum: float | None = None
    maximum: float | None = None
    maximum_exclusive: bool = False
    max_items: int | None = None  # stop sequences only


@dataclass(frozen=True)
class WireRequest:
    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Adapter:
    """Pure functions translating to and from one provider's wire format.

    `build(base_url, api_key, request, params)` gets `params` already validated and
    renamed to the provider's parameter names. `parse(body, requested_model)` may raise
    KeyError, IndexError, TypeError, AttributeError or ValueError on an unexpected
    body; dispatch reports those as ProviderError. `error_message(body)` and
    `retry_after(body)` read an error body (any JSON value) and never raise;
    `retry_after` is only for providers that put a retry delay in the body rather
    than (or as well as) the retry-after header.
    """

    settings: Mapping[str, Setting]
    build: Callable[[str, str, CompletionRequest, Mapping[str, Any]], WireRequest]
    parse: Callable[[Any, str], Completion]
    error_message: Callable[[Any], str | None]
    retry_after: Callable[[Any], int | None] | None = None
