"""Calls to LLM providers: `complete` and `open_stream` over five providers' native APIs."""

from gateway.providers.dispatch import DEFAULT_BASE_URLS, PROVIDERS, complete
from gateway.providers.streaming import Delta, ProviderStream, open_stream
from gateway.providers.types import ChatMessage, Completion, CompletionRequest, Usage

__all__ = [
    "DEFAULT_BASE_URLS",
    "PROVIDERS",
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "Delta",
    "ProviderStream",
    "Usage",
    "complete",
    "open_stream",
]
