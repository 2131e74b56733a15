"""The gateway's stack with none of its work: a reference for bench.gateway_load.

A Litestar app on uvicorn, one worker, with the gateway's own provider client
(`build_http_client`). Its one route decodes a prompt, posts it to the provider as a chat
completion and answers with the content: no token check, no database, no usage row. What it
costs per request bounds what any gateway built on this stack can reach on the same machine.

    FLOOR_PROVIDER_URL=http://127.0.0.1:PORT/openai/v1 uvicorn bench.framework_floor:app --factory \
        --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, post
from litestar.datastructures import State

from gateway.http_client import build_http_client
from gateway.settings import Settings

MODEL = "gpt-4o-mini"


class Prompt(msgspec.Struct):
    prompt: str


class Answer(msgspec.Struct):
    content: str


@post("/complete", status_code=200)
async def complete(data: Prompt, state: State) -> Answer:
    async with state.client.post(
        state.url,
        json={"model": MODEL, "messages": [{"role": "user", "content": data.prompt}]},
        headers={"authorization": f"Bearer {state.key}"},
    ) as response:
        response.raise_for_status()
        answer = await response.json()
    return Answer(answer["choices"][0]["message"]["content"])


def app() -> Litestar:
    """uvicorn factory; the client has the gateway's default limits and timeouts."""
    provider_url = os.environ["FLOOR_PROVIDER_URL"]

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with build_http_client(Settings()) as client:
            app.state.client = client
            app.state.url = f"{provider_url}/chat/completions"
            app.state.key = os.environ.get("FLOOR_PROVIDER_KEY", "")
            yield

    return Litestar([complete], lifespan=[lifespan], logging_config=None, openapi_config=None)
