"""OpenAI's wire shape over the same execution pipeline as execute-llm: POST /v1/chat/completions
and GET /v1/models, so the official SDKs can point at the gateway.

`model` chooses the configuration: `processor/<uuid>` runs that processor's, `profile/<name>` one
of the organization's profiles, `<provider>/<model_name>` an active catalog model (or
`custom:<name>/<model_name>`). A service-role token names the organization in X-Organization-Id.
Errors come in OpenAI's shape (see app.py), with the statuses execute-llm gives.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Stream

from gateway import pipeline
from gateway.auth import organization_of
from gateway.data import Caller
from gateway.errors import BadRequest
from gateway.pipeline import Call, CallOutcome
from gateway.providers import ChatMessage
from gateway.request import REQUEST_ID_HEADER, request_id_of
from gateway.routes import Injected
from gateway.routes.execute import OPERATION_ID_MAX
from gateway.routes.sse import NO_BUFFERING, sse_event
from gateway.services import Services
from gateway.storable import unstorable
from gateway.usage import BilledCompletion, BilledStream

ORGANIZATION_HEADER = "x-organization-id"
COST_HEADER = "x-llm-cost-usd"
PROCESSOR_PREFIX = "processor/"
# The `user` field is kept on the usage row as its operation id, marked as such.
USER_PREFIX = "user:"


class TextPart(msgspec.Struct, forbid_unknown_fields=False):
    type: Literal["text"]
    text: str


class InMessage(msgspec.Struct, forbid_unknown_fields=False):
    # "developer" is OpenAI's newer name for system instructions.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(msgspec.Struct, forbid_unknown_fields=False):
    include_usage: bool = False


class ChatCompletionRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The fields the gateway honours; any other field the SDK sends is ignored."""

    # processor/<uuid>, profile/<name> or <provider>/<model_name>: a profile name is at most 63
    # characters, a model id 200, a custom provider's name 31.
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    messages: list[InMessage]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: Annotated[str, msgspec.Meta(max_length=OPERATION_ID_MAX - len(USER_PREFIX))] | None = None

    def __post_init__(self) -> None:
        # Refused before the database sees it: a NUL cannot be a query parameter.
        if (problem := unstorable(self.model)) is not None:
            raise ValueError(f"model {problem}")
        if not any(m.role in ("user", "assistant") for m in self.messages):
            raise ValueError("messages must hold at least one user or assistant message")
        for index, message in enumerate(self.messages):
            if (problem := unstorable(message.text)) is not None:
                raise ValueError(f"messages[{index}].content {problem}")
        if self.user is not None and (problem := unstorable(self.user)) is not None:
            raise ValueError(f"user {problem}")

    def settings(self) -> dict[str, Any]:
        requested = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens,
            "stop": self.stop,
        }
        return {name: value for name, value in requested.items() if value is not None}


@post("/v1/chat/completions", status_code=200, summary="OpenAI-compatible chat completion (JSON or stream)")
async def chat_completions(
    data: JSONBody[ChatCompletionRequest],
    caller: Injected[Caller],
    services: Injected[Services],
    request: Request[Any, Any, State],
) -> Response[Any]:
    request_id = request_id_of(request)
    processor_id, model = _choice(data.model)
    system = "\n\n".join(m.text for m in data.messages if m.role in ("system", "developer")) or None
    call = Call(
        organization_id=_organization(caller, request),
        request_id=request_id,
        messages=tuple(
            ChatMessage(role="user" if m.role == "user" else "assistant", content=m.text)
            for m in data.messages
            if m.role in ("user", "assistant")
        ),
        system=system,
        processor_id=processor_id,
        model=model,
        settings=data.settings(),
        operation_id=None if data.user is None else USER_PREFIX + data.user,
    )
    headers = {REQUEST_ID_HEADER: str(request_id)}
    completion_id = f"chatcmpl-{request_id.hex}"
    if data.stream:
        streaming = await pipeline.execute_stream(services, caller, call)
        include_usage = data.stream_options is not None and data.stream_options.include_usage
        chunks = _chunks(streaming, completion_id, include_usage)
        return Stream(
            chunks,
            media_type="text/event-stream",
            headers={**headers, **NO_BUFFERING},
            # Runs after the body, also when the client left before it began: the row is written.
            background=BackgroundTask(streaming.billed.close),
        )
    outcome = await pipeline.execute(services, caller, call)
    billed = outcome.billed
    if billed.estimated_cost is not None:
        headers[COST_HEADER] = _cost_text(billed.estimated_cost)
    answer = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _served(outcome),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": billed.completion.content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(billed),
    }
    return Response(answer, headers=headers)


@get("/v1/models", summary="What the caller may name as model, in OpenAI's list format")
async def list_models(
    caller: Injected[Caller], services: Injected[Services], request: Request[Any, Any, State]
) -> dict[str, Any]:
    organization_id = _organization(caller, request)
    choices = await services.data_access.list_models(caller, organization_id)
    return {
        "object": "list",
        "data": [{"id": c.id, "object": "model", "created": 0, "owned_by": c.owned_by} for c in choices],
    }


async def _chunks(outcome: CallOutcome[BilledStream], completion_id: str, include_usage: bool) -> AsyncIterator[bytes]:
    """chat.completion.chunk events, the usage (with its cost) in a last chunk when asked, then
    [DONE]; a failure mid-stream is an error event, as OpenAI sends one. As on execute-llm, the
    row is written however the stream ends, the client going away included."""
    stream = outcome.billed
    created = int(time.time())
    model = _served(outcome)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return sse_event(None, {**body, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    async with contextlib.aclosing(stream.relay()) as relayed:
        async for item in relayed:
            if isinstance(item, str):
                yield chunk({"content": item})
            elif isinstance(item, BilledCompletion):
                yield chunk({}, "stop")
                if include_usage:
                    body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
                    yield sse_event(None, {**body, "choices": [], "usage": _usage(item)})
                yield b"data: [DONE]\n\n"
            else:  # as OpenAI reports a failure mid-stream: an error object, and no [DONE]
                yield sse_event(None, {"error": {"message": item.message, "type": "api_error", "code": item.code}})


def _choice(model: str) -> tuple[uuid.UUID | None, str | None]:
    """A processor's id, or the model name the database resolves."""
    if not model.startswith(PROCESSOR_PREFIX):
        return None, model
    try:
        return uuid.UUID(model.removeprefix(PROCESSOR_PREFIX)), None
    except ValueError:
        raise BadRequest(f"model {model!r}: processor/ must be followed by a processor id") from None


def _organization(caller: Caller, request: Request[Any, Any, State]) -> uuid.UUID:
    """The caller's organization; a service-role token names it in X-Organization-Id."""
    value = request.headers.get(ORGANIZATION_HEADER)
    if value is None:
        if caller.role == "service_role":
            raise BadRequest(f"{ORGANIZATION_HEADER} is required with a service-role token")
        return organization_of(caller, None)
    try:
        return organization_of(caller, uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{ORGANIZATION_HEADER} must be an organization id") from None


def _served(outcome: CallOutcome[Any]) -> str:
    """The target that served, as a model name the caller could send back."""
    return f"{outcome.target.provider}/{outcome.target.model}"


def _usage(billed: BilledCompletion) -> dict[str, Any]:
    usage = billed.completion.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost_usd": billed.estimated_cost,
    }


def _cost_text(cost: float) -> str:
    # Plain decimal notation (1e-06 would be valid JSON but an odd header).
    return f"{cost:.12f}".rstrip("0").rstrip(".") or "0"
