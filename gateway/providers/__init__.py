"""Calls to LLM providers: one `complete` function over five providers' native APIs."""

from gateway.providers.dispatch import DEFAULT_BASE_URLS, PROVIDERS, complete
from gateway.providers.types import ChatMessage, Completion, CompletionRequest, Usage

__all__ = ["DEFAULT_BASE_URLS", "PROVIDERS", "ChatMessage", "Completion", "CompletionRequest", "Usage", "complete"]
