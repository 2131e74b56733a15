"""execute-llm with "stream": true: text/event-stream with delta events, then done (the usage row
committed first) or error; errors before anything is streamed are ordinary JSON answers; one row
per stream, also when the provider cuts it or the client goes away (then over real HTTP)."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.postgres import free_port
from tests.fakes.providers import PROVIDERS, Failure, FakeProviders, Stream
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, bearer, command, gateway_env, sign, wait_for

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

CONTENT = "Streaming arrives in pieces, and every piece counts."


def events(body: str) -> list[tuple[str, Any]]:
    """(event, data) of each server-sent event, framed as the gateway frames them."""
    parsed = []
    for block in body.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        parsed.append((fields.get("event", "message"), json.loads(fields["data"])))
    return parsed


async def stream_call(gw: Gateway, **body: Any) -> tuple[int, str, dict[str, str]]:
    response = await gw.client.post(
        "/functions/v1/execute-llm",
        json={"prompt": "hi", "stream": True, **body},
        headers=bearer(gw.token(gw.tenants.acme.member)),
    )
    return response.status_code, response.text, dict(response.headers)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_provider_streams_deltas_then_done_with_the_billed_usage(gateway: Gateway, provider: str) -> None:
    gw = gateway
    processor = gw.processor_for(provider)
    gw.providers.script(provider, Stream(CONTENT, chunks=4))
    status, body, headers = await stream_call(gw, processor_id=str(processor))
    assert status == 200, body
    assert headers["content-type"].startswith("text/event-stream")
    received = events(body)
    kinds = [kind for kind, _ in received]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and len(kinds) >= 3
    assert "".join(data["content"] for kind, data in received if kind == "delta") == CONTENT
    done = received[-1][1]
    [row] = gw.usage_rows()
    assert done["provider"] == provider and done["usage"]["input_tokens"] == row["input_tokens"] == 12
    assert done["usage"]["output_tokens"] == row["output_tokens"] == 7
    assert row["usage_estimated"] is False and row["error_message"] is None
    assert done["estimated_cost"] == (None if row["estimated_cost"] is None else float(row["estimated_cost"]))
    assert [a["outcome"] for a in done["attempts"]] == ["ok"]
    [request] = gw.providers.requests_for(provider)
    if provider == "google":
        assert request.path.endswith(":streamGenerateContent") and request.query == "alt=sse"
    else:
        assert request.json["stream"] is True


async def test_errors_before_streaming_are_json_answers(gateway: Gateway) -> None:
    gw = gateway
    response = await gw.client.post("/functions/v1/execute-llm", json={"prompt": "hi", "stream": True})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    gw.providers.script("openai", Failure(401, "Incorrect API key provided"))
    status, body, headers = await stream_call(gw)
    assert status == 502 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "provider_error"
    assert len(gw.usage_rows()) == 1


async def test_a_stream_fails_over_to_a_fallback_before_its_first_byte(gateway: Gateway) -> None:
    gw = gateway
    config = {
        "default_profile": "main",
        "profiles": {
            "main": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["backup"]},
            "backup": {"provider": "anthropic", "model": "claude-haiku-4-5"},
        },
    }
    gw.db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(config), gw.tenants.acme.id))
    gw.providers.script("openai", Failure(503, "down"))
    gw.providers.script("anthropic", Stream(CONTENT))
    status, body, _ = await stream_call(gw)
    assert status == 200
    done = events(body)[-1][1]
    assert done["provider"] == "anthropic"
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("openai", "error"), ("anthropic", "ok")]
    assert [r["provider"] for r in gw.usage_rows()] == ["openai", "anthropic"]


@pytest.mark.parametrize(("provider", "usage_known"), [("anthropic", True), ("openai", False)])
async def test_a_stream_the_provider_cuts_ends_with_an_error_event_and_a_row_of_what_is_known(
    gateway: Gateway, provider: str, usage_known: bool
) -> None:
    gw = gateway
    processor = gw.processor_for(provider)
    gw.providers.script(provider, Stream(CONTENT, chunks=4, cut_after=2))
    status, body, _ = await stream_call(gw, processor_id=str(processor))
    assert status == 200
    received = events(body)
    assert [kind for kind, _ in received] == ["delta", "delta", "error"]
    assert received[-1][1]["error"]["code"] == "provider_error"
    [row] = gw.usage_rows()
    assert row["error_message"] and "cut" in row["error_message"]
    # Anthropic reported the input tokens at the start; OpenAI reports usage only at the end.
    assert row["usage_estimated"] is (not usage_known)
    text = "".join(data["content"] for kind, data in received if kind == "delta")
    if usage_known:
        assert row["input_tokens"] == 12
    else:
        assert row["output_tokens"] == -(-len(text) // 4)


async def test_a_stream_whose_row_cannot_be_written_as_asked_ends_with_an_error_not_done(gateway: Gateway) -> None:
    """The processor is deleted while its call streams: the row is written without it, and the
    client gets the error a non-streamed call would get (404), never a done without its row."""
    gw = gateway
    processor = gw.processor_for("openai")
    gw.providers.script("openai", Stream(CONTENT, chunks=10, interval=0.05))

    # From another thread: the test client holds this event loop while it waits for the answer.
    deleting = threading.Timer(0.2, gw.db.run, ("delete from processors where id = %s", (processor,)))
    deleting.start()
    status, body, _ = await stream_call(gw, processor_id=str(processor))
    deleting.join()
    assert status == 200
    received = events(body)
    assert received[-1][0] == "error" and received[-1][1]["error"]["code"] == "not_found"
    assert "done" not in [kind for kind, _ in received]
    [row] = gw.usage_rows()
    assert row["processor_id"] is None and row["output_tokens"] == 7


@pytest.fixture
def served(db: Database, providers: FakeProviders) -> Iterator[int]:
    """`python -m gateway` on a real port."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), **gateway_env(db, providers, GATEWAY_PORT=str(port))}
    with command(["-m", "gateway"], env):
        wait_for(f"http://127.0.0.1:{port}/health")
        yield port


def member_token(tenants: Tenants) -> str:
    return sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})


def test_the_event_stream_is_framed_as_sse_over_real_http(
    served: int, tenants: Tenants, providers: FakeProviders
) -> None:
    providers.script("openai", Stream(CONTENT, chunks=3, interval=0.05))
    arrivals: list[tuple[float, bytes]] = []
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{served}/functions/v1/execute-llm",
        json={"prompt": "hi", "stream": True},
        headers=bearer(member_token(tenants)),
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        arrivals = [(time.monotonic(), chunk) for chunk in response.iter_raw()]
    body = b"".join(chunk for _, chunk in arrivals).decode()
    # Every event is `event: <name>` and one `data:` line, ended by a blank line.
    assert re.fullmatch(r"(event: (delta|done)\ndata: [^\n]+\n\n)+", body), body
    assert [kind for kind, _ in events(body)][-1] == "done"
    # The deltas arrive as the provider sends them, not all at the end.
    assert arrivals[-1][0] - arrivals[0][0] >= 0.05


def test_a_client_that_goes_away_mid_stream_closes_the_upstream_and_is_still_billed(
    served: int, db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    providers.script("openai", Stream(CONTENT * 20, chunks=100, interval=0.05))
    body = json.dumps({"prompt": "hi", "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", served)) as sock:
        sock.sendall(
            b"POST /functions/v1/execute-llm HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {member_token(tenants)}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"event: delta" not in received:
            received += sock.recv(4096)
    # The socket is closed after the first delta, with most of the stream still to come.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (providers.stream_disconnects and db.run("select 1 from llm_usage_logs")):
        time.sleep(0.1)
    assert b"200 OK" in received.split(b"\r\n", 1)[0]
    assert len(providers.stream_disconnects) == 1, "the gateway closed its upstream stream"
    [row] = db.run("select * from llm_usage_logs")
    assert row["error_message"] == "the client disconnected before the stream ended"
    assert row["usage_estimated"] is True and row["output_tokens"] >= 1 and row["input_tokens"] >= 1
