"""Anthropic Messages API (POST /v1/messages)."""

from collections.abc import Mapping
from typing import Any

from gateway.providers.types import Adapter, Completion, CompletionRequest, Setting, Usage, WireRequest

API_VERSION = "2023-06-01"
# max_tokens is required by the Messages API; this is used when the caller sets none.
DEFAULT_MAX_TOKENS = 4096

SETTINGS: Mapping[str, Setting] = {
    "temperature": Setting("temperature", "number", 0, 1),
    "top_p": Setting("top_p", "number", 0, 1),
    "top_k": Setting("top_k", "integer", 0),
    "max_tokens": Setting("max_tokens", "integer", 1),
    "stop": Setting("stop_sequences", "stop"),
}


def build(base_url: str, api_key: str, request: CompletionRequest, params: Mapping[str, Any]) -> WireRequest:
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        **params,
    }
    if request.system:
        body["system"] = request.system
    headers = {"x-api-key": api_key, "anthropic-version": API_VERSION, "accept": "application/json"}
    return WireRequest(f"{base_url}/v1/messages", headers, body)


def parse(body: Any, requested_model: str) -> Completion:
    content = "".join(block["text"] for block in body["content"] if block["type"] == "text")
    usage = body["usage"]
    # input_tokens excludes the cached parts; they are reported (and billed) separately.
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    return Completion(
        content=content,
        model=body.get("model") or requested_model,
        usage=Usage(
            input_tokens=usage["input_tokens"] + cache_read + cache_write,
            output_tokens=usage["output_tokens"],
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        ),
    )


def error_message(body: Any) -> str | None:
    # {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    kind = error.get("type")
    return f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]


ADAPTER = Adapter(SETTINGS, build, parse, error_message)
