"""Gemini API generateContent (POST /models/{model}:generateContent)."""

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.providers.types import Adapter, Completion, CompletionRequest, Setting, Usage, WireRequest

SETTINGS: Mapping[str, Setting] = {
    "temperature": Setting("temperature", "number", 0, 2),
    "top_p": Setting("topP", "number", 0, 1),
    "top_k": Setting("topK", "integer", 1),
    "max_tokens": Setting("maxOutputTokens", "integer", 1),
    "stop": Setting("stopSequences", "stop", max_items=5),
    "presence_penalty": Setting("presencePenalty", "number", -2, 2, maximum_exclusive=True),
    "frequency_penalty": Setting("frequencyPenalty", "number", -2, 2, maximum_exclusive=True),
    "seed": Setting("seed", "integer", -(2**31), 2**31 - 1),
}

_ROLES = {"user": "user", "assistant": "model"}


def build(base_url: str, api_key: str, request: CompletionRequest, params: Mapping[str, Any]) -> WireRequest:
    body: dict[str, Any] = {
        "contents": [{"role": _ROLES[m.role], "parts": [{"text": m.content}]} for m in request.messages],
    }
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    if params:
        body["generationConfig"] = dict(params)
    # The key goes in a header only: URLs end up in access logs and exception messages.
    headers = {"x-goog-api-key": api_key, "accept": "application/json"}
    # Quoting keeps a model id from reshaping the path (e.g. "x:streamGenerateContent?").
    return WireRequest(f"{base_url}/models/{quote(request.model, safe='')}:generateContent", headers, body)


def parse(body: Any, requested_model: str) -> Completion:
    candidates = body.get("candidates")
    if not candidates:
        reason = (body.get("promptFeedback") or {}).get("blockReason")
        raise ValueError(f"no candidates (prompt blocked: {reason})" if reason else "no candidates")
    parts = (candidates[0].get("content") or {}).get("parts") or []
    # Thought summaries are flagged with "thought": true and are not part of the answer.
    content = "".join(part.get("text", "") for part in parts if not part.get("thought"))
    usage = body["usageMetadata"]
    # Zero counts are omitted from the JSON. promptTokenCount includes the cached
    # tokens; thinking is billed as output but not counted in candidatesTokenCount.
    thoughts = usage.get("thoughtsTokenCount", 0)
    return Completion(
        content=content,
        model=body.get("modelVersion") or requested_model,
        usage=Usage(
            input_tokens=usage["promptTokenCount"],
            output_tokens=usage.get("candidatesTokenCount", 0) + thoughts,
            cache_read_tokens=usage.get("cachedContentTokenCount", 0),
            reasoning_tokens=thoughts,
        ),
    )


def error_message(body: Any) -> str | None:
    # {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    status = error.get("status")
    return f"{status}: {error['message']}" if isinstance(status, str) else error["message"]


def retry_after(body: Any) -> int | None:
    """Seconds from a google.rpc.RetryInfo detail ({"retryDelay": "37s"}), if any."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                return None
            return math.ceil(seconds) if math.isfinite(seconds) and seconds >= 0 else None
    return None


ADAPTER = Adapter(SETTINGS, build, parse, error_message, retry_after)
