"""The two commands that serve the gateway, run as a newcomer or an operator would run them."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket

import httpx
import pytest

from devstack.postgres import free_port
from gateway.__main__ import tcp_listener
from tests.fakes.providers import FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import SYSTEM_KEYS, bearer, command, gateway_env, sign, wait_for

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures


@pytest.mark.parametrize("workers", [1, 2])
def test_python_m_gateway_serves_real_http(
    db: Database, tenants: Tenants, providers: FakeProviders, workers: int
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        **gateway_env(db, providers, GATEWAY_PORT=str(port), GATEWAY_WORKERS=str(workers)),
    }
    with command(["-m", "gateway"], env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health")
        assert httpx.get(f"{base}/ready").json()["status"] == "ok"
        token = sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})
        response = httpx.post(f"{base}/functions/v1/execute-llm", json={"prompt": "hi"}, headers=bearer(token))
        assert response.status_code == 200, response.text
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert token.rsplit(".", 1)[1] not in output and SYSTEM_KEYS["openai"] not in output


def test_python_m_devstack_prints_a_curl_that_works_and_stops_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    port = free_port()
    args = ["-m", "devstack", "--port", str(port), "--db-port", str(free_port())]
    with command(args, env) as process:
        assert process.stdout is not None
        banner: list[str] = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("  -d "):
                break
        text = "".join(banner)
        assert "LOCAL echo" in text, text

        curl = shlex.split(text[text.index("curl -sS") :].replace("\\\n", " "))
        url = curl[2]
        headers = dict(curl[i + 1].split(": ", 1) for i, arg in enumerate(curl) if arg == "-H")
        body = curl[curl.index("-d") + 1]
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["content"].startswith("[local devstack echo model")
        assert answer["provider"] == "openai" and answer["usage"]["input_tokens"] > 0
        assert answer["estimated_cost"] is not None

        database_url = re.search(r"database\s+(\S+)", text)
        assert database_url is not None and database_url.group(1).startswith("postgresql://")

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Stopped" in rest


def test_the_workers_listener_gives_accepted_connections_tcp_nodelay() -> None:
    """Without TCP_NODELAY each keep-alive response waits for the client's delayed ACK."""

    async def accepted_nodelay() -> int:
        listener = tcp_listener("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            nodelay = await asyncio.wait_for(accepted, 5)
            writer.close()
        return nodelay

    assert asyncio.run(accepted_nodelay()) == 1
