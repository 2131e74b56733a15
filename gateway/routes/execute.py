"""POST /functions/v1/execute-llm: resolve the caller's configuration, call the provider, bill it;
as one JSON answer, or as server-sent events with `stream`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Stream

from gateway import pipeline
from gateway.auth import organization_of
from gateway.data import Caller
from gateway.pipeline import Call, CallOutcome
from gateway.providers import ChatMessage
from gateway.request import REQUEST_ID_HEADER, request_id_of
from gateway.routes import Injected, error_responses
from gateway.routes.sse import NO_BUFFERING, sse_event
from gateway.services import Services
from gateway.storable import unstorable
from gateway.usage import BilledCompletion, BilledStream

# The width of llm_usage_logs.operation_id: longer ids would fail only after the call.
OPERATION_ID_MAX = 200


class Message(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "assistant"]
    content: str


class ExecuteRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of `prompt` (one user turn) and `messages` (a conversation)."""

    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    processor_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    operation_id: Annotated[str, msgspec.Meta(max_length=OPERATION_ID_MAX)] | None = None
    organization_id: Annotated[uuid.UUID, msgspec.Meta(description="Service-role tokens only.")] | None = None
    timeout_seconds: (
        Annotated[float, msgspec.Meta(gt=0, le=3600, description="Less than the gateway's deadline, if wanted.")] | None
    ) = None
    stream: Annotated[bool, msgspec.Meta(description="Answer text/event-stream: delta events, then done or error.")] = (
        False
    )

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("exactly one of prompt and messages is required")
        # Refused before anything is sent: the usage row of a call made with it could not be written.
        for field, text in self._texts():
            if (problem := unstorable(text)) is not None:
                raise ValueError(f"{field} {problem}")

    def _texts(self) -> Iterator[tuple[str, str]]:
        for field in ("prompt", "system", "operation_id"):
            if (text := getattr(self, field)) is not None:
                yield field, text
        for index, message in enumerate(self.messages or ()):
            yield f"messages[{index}].content", message.content


class UsageOut(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


class ConfigOut(msgspec.Struct):
    source: Literal["processor", "organization", "global"]
    profile: str | None
    api_key_source: Literal["organization", "system"]


class AttemptOut(msgspec.Struct):
    provider: str
    model: str
    outcome: Literal["ok", "error", "skipped"]
    error_code: str | None
    response_time_ms: int


class StreamDone(msgspec.Struct):
    """The `done` event of a stream: the JSON answer's fields but the content, already sent."""

    provider: str
    model: str
    usage: UsageOut
    estimated_cost: float | None
    response_time_ms: int
    config: ConfigOut
    attempts: list[AttemptOut]


class ExecuteResponse(StreamDone):
    content: str


@post(
    "/functions/v1/execute-llm",
    status_code=200,
    summary="Run one LLM completion for the caller's organization (JSON, or text/event-stream with stream)",
    responses=error_responses(400, 401, 402, 403, 404, 422, 429, 502, 503, 504),
)
async def execute_llm(
    data: JSONBody[ExecuteRequest],
    caller: Injected[Caller],
    services: Injected[Services],
    request: Request[Any, Any, State],
) -> Response[ExecuteResponse] | Stream:
    messages = (
        (ChatMessage(role="user", content=data.prompt),)
        if data.prompt is not None
        else tuple(ChatMessage(role=m.role, content=m.content) for m in data.messages or ())
    )
    request_id = request_id_of(request)
    call = Call(
        organization_id=organization_of(caller, data.organization_id),
        request_id=request_id,
        timeout_seconds=data.timeout_seconds,
        messages=messages,
        system=data.system,
        processor_id=data.processor_id,
        run_id=data.run_id,
        operation_id=data.operation_id,
    )
    headers = {REQUEST_ID_HEADER: str(request_id)}
    if data.stream:
        # Errors until a provider is streaming are ordinary JSON answers with their status.
        streaming = await pipeline.execute_stream(services, caller, call)
        return Stream(
            _events(streaming),
            media_type="text/event-stream",
            headers={**headers, **NO_BUFFERING},
            # Runs after the body, also when the client left before it began: the row is written.
            background=BackgroundTask(streaming.billed.close),
        )
    outcome = await pipeline.execute(services, caller, call)
    completion = outcome.billed.completion
    answer = ExecuteResponse(content=completion.content, **_answer_fields(outcome, outcome.billed))
    return Response(answer, headers=headers)


async def _events(outcome: CallOutcome[BilledStream]) -> AsyncIterator[bytes]:
    """delta events as text arrives, then done (the row committed first) or error."""
    async with contextlib.aclosing(outcome.billed.relay()) as relayed:
        async for item in relayed:
            if isinstance(item, str):
                yield sse_event("delta", {"content": item})
            elif isinstance(item, BilledCompletion):
                yield sse_event("done", StreamDone(**_answer_fields(outcome, item)))
            else:
                yield sse_event("error", {"error": {"code": item.code, "message": item.message}})


def _answer_fields(outcome: CallOutcome[Any], billed: BilledCompletion) -> dict[str, Any]:
    """What the JSON answer and a stream's done event say, but the content."""
    config, target = outcome.config, outcome.target
    usage = billed.completion.usage
    return dict(
        provider=target.provider,
        model=billed.completion.model,
        usage=UsageOut(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        ),
        estimated_cost=billed.estimated_cost,
        response_time_ms=billed.response_time_ms,
        config=ConfigOut(source=config.source, profile=target.profile, api_key_source=target.api_key_source),
        attempts=[
            AttemptOut(a.provider, a.model, a.outcome, a.error_code, a.response_time_ms) for a in outcome.attempts
        ],
    )
