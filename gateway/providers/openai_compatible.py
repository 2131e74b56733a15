"""OpenAI-style chat completions (POST /chat/completions): OpenAI, Mistral and Meta's Llama API.

The three share the wire format; they differ in accepted parameters and their names
(see the SETTINGS maps), and in error bodies, which `error_message` reads in all forms.
"""

from collections.abc import Mapping
from typing import Any

from gateway.providers.types import Adapter, Completion, CompletionRequest, Setting, Usage, WireRequest

# max_tokens has a floor of 1 everywhere: a zero-token completion is never useful.
OPENAI_SETTINGS: Mapping[str, Setting] = {
    "temperature": Setting("temperature", "number", 0, 2),
    "top_p": Setting("top_p", "number", 0, 1),
    # max_tokens is deprecated in favour of max_completion_tokens and rejected by o-series models.
    "max_tokens": Setting("max_completion_tokens", "integer", 1),
    "stop": Setting("stop", "stop", max_items=4),
    "presence_penalty": Setting("presence_penalty", "number", -2, 2),
    "frequency_penalty": Setting("frequency_penalty", "number", -2, 2),
    "seed": Setting("seed", "integer", -(2**63), 2**63 - 1),
}

MISTRAL_SETTINGS: Mapping[str, Setting] = {
    "temperature": Setting("temperature", "number", 0, 1.5),
    "top_p": Setting("top_p", "number", 0, 1),
    "max_tokens": Setting("max_tokens", "integer", 1),
    "stop": Setting("stop", "stop"),
    "presence_penalty": Setting("presence_penalty", "number", -2, 2),
    "frequency_penalty": Setting("frequency_penalty", "number", -2, 2),
    "seed": Setting("random_seed", "integer", 0),
}

# The Llama API's compat endpoint mirrors its native chat API, which documents only
# temperature, top_p, top_k, max_completion_tokens and repetition_penalty; top_k is not
# an OpenAI parameter, so only the ones both sides document are accepted.
META_SETTINGS: Mapping[str, Setting] = {
    "temperature": Setting("temperature", "number", 0, 1),
    "top_p": Setting("top_p", "number", 0, 1),
    "max_tokens": Setting("max_completion_tokens", "integer", 1),
}


def build(base_url: str, api_key: str, request: CompletionRequest, params: Mapping[str, Any]) -> WireRequest:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    body = {"model": request.model, "messages": messages, **params}
    headers = {"accept": "application/json"}
    if api_key:  # a self-hosted custom provider may need none
        headers["authorization"] = f"Bearer {api_key}"
    return WireRequest(f"{base_url}/chat/completions", headers, body)


def parse(body: Any, requested_model: str) -> Completion:
    message = body["choices"][0]["message"]
    return Completion(
        content=_message_text(message),
        model=body.get("model") or requested_model,
        usage=_usage(body),
    )


def _message_text(message: Any) -> str:
    content = message.get("content")
    if content is None:
        # OpenAI puts a safety refusal in its own field and leaves content null.
        refusal = message.get("refusal")
        return refusal if isinstance(refusal, str) else ""
    if isinstance(content, str):
        return content
    # Mistral reasoning models answer with typed chunks (thinking, text): keep the text.
    return "".join(chunk["text"] for chunk in content if chunk["type"] == "text")


def _usage(body: Any) -> Usage:
    if body.get("usage") is None and "metrics" in body:
        # The Llama API reports [{"metric": "num_prompt_tokens", "value": 22, "unit": "tokens"}, ...]
        metrics = {m["metric"]: _whole(m["value"]) for m in body["metrics"]}
        return Usage(input_tokens=metrics["num_prompt_tokens"], output_tokens=metrics["num_completion_tokens"])
    # prompt_tokens includes the cached tokens; completion_tokens includes reasoning.
    usage = body["usage"]
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage["prompt_tokens"],
        output_tokens=usage["completion_tokens"],
        cache_read_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


def _whole(value: Any) -> Any:
    # Llama metrics are typed as numbers, so 22.0 may arrive for 22.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def error_message(body: Any) -> str | None:
    """Read every error form these providers use.

    OpenAI (and the Llama compat endpoint): {"error": {"message", "type", "param", "code"}};
    Mistral: {"object": "error", "message", "type", ...}, {"message": ...} (auth failures)
    and {"detail": [{"loc", "msg", "type"}]} or {"detail": "..."} (validation).
    """
    return _describe(body, depth=4)


def _describe(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        return value or None
    if depth == 0:
        return None
    if isinstance(value, list):
        texts = [text for item in value if (text := _describe(item, depth - 1))]
        return "; ".join(texts) or None
    if isinstance(value, dict):
        for key in ("error", "message", "detail", "msg"):
            text = _describe(value.get(key), depth - 1)
            if text:
                kind = value.get("type")
                return f"{kind}: {text}" if key == "message" and isinstance(kind, str) else text
    return None


OPENAI = Adapter(OPENAI_SETTINGS, build, parse, error_message)
MISTRAL = Adapter(MISTRAL_SETTINGS, build, parse, error_message)
META = Adapter(META_SETTINGS, build, parse, error_message)
