"""The Python floor for bench.gateway_load: a bare forwarder, no auth, no database.

`aiohttp.web` on uvloop, one process; its one route reads a prompt, posts it to the provider as a
chat completion with one pooled `aiohttp.ClientSession` and answers with the content. No token
check, no configuration, no usage row: what forwarding a call costs in Python on this machine,
which the gateway's throughput is reported against.

    python -m bench.bare_forwarder --port PORT --provider-url http://127.0.0.1:PORT/openai/v1 --key KEY
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

MODEL = "gpt-4o-mini"
SESSION = web.AppKey("session", aiohttp.ClientSession)


def build_app(provider_url: str, key: str) -> web.Application:
    url = f"{provider_url.rstrip('/')}/chat/completions"
    headers = {"authorization": f"Bearer {key}"}

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[SESSION] = session
            yield

    async def complete(request: web.Request) -> web.Response:
        prompt = (await request.json())["prompt"]
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
        async with request.app[SESSION].post(url, json=body, headers=headers) as response:
            response.raise_for_status()
            answer = await response.json()
        return web.json_response({"content": answer["choices"][0]["message"]["content"]})

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_post("/complete", complete)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--provider-url", required=True)
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    uvloop.install()
    web.run_app(build_app(args.provider_url, args.key), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
