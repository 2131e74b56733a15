"""A LOCAL stand-in for an OpenAI-compatible chat completions API, for `python -m devstack`.

It runs no model: it answers every `POST /v1/chat/completions` with a canned reply that echoes
the last user message, labelled as local, with OpenAI-style `usage` (whitespace-separated words
stand in for tokens). It lets a newcomer see the whole gateway path — token, configuration,
key, provider call, usage row and cost — without any provider account.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

LABEL = "[local devstack echo model, not a real LLM]"
# Reported as the model, so the gateway's answer shows where it came from.
MODEL_PREFIX = "local-echo/"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status)


def _words(text: str) -> int:
    return len(text.split())


async def chat_completions(request: web.Request) -> web.Response:
    try:
        body: Any = json.loads(await request.read())
    except ValueError:
        return _error(400, "the body is not JSON")
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "messages must be a non-empty list of objects")
    if not isinstance(body.get("model"), str):
        return _error(400, "model is required")
    contents = [m.get("content") if isinstance(m.get("content"), str) else "" for m in messages]
    last_user = next(
        (c for m, c in zip(reversed(messages), reversed(contents), strict=True) if m.get("role") == "user"), ""
    )
    reply = f"{LABEL} You said: {last_user}"
    prompt_tokens = sum(_words(c) for c in contents)
    completion_tokens = _words(reply)
    return web.json_response(
        {
            "id": f"chatcmpl-local-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_PREFIX + body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


async def start(host: str, port: int) -> web.AppRunner:
    """Serve on host:port until the returned runner is cleaned up; its base URL ends in /v1."""
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
