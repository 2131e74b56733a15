"""`python -m devstack`: the product on this machine — database, gateway and a local LLM endpoint.

Starts PostgreSQL with the Supabase compatibility layer, the migrations and the seed; a LOCAL
OpenAI-compatible echo endpoint (devstack/local_llm.py); and the gateway, configured for both
with a freshly generated JWT secret. Then it prints the connection string and a `curl` that
runs a seed processor as the demo admin, and serves until Ctrl-C, which stops everything.

Providers without a real `<PROVIDER>_API_KEY` in the environment: the OpenAI-compatible ones
(openai, mistral, meta) are answered by the local endpoint, anthropic and google answer 503
(no key). Providers with a key set are called for real.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import jwt
import uvicorn

from devstack import local_llm
from devstack.database import build_database
from devstack.postgres import free_port, running_cluster
from gateway.app import create_app
from gateway.providers import PROVIDERS
from gateway.settings import Settings

DATABASE = "validai_local"
HOST = "127.0.0.1"
# The OpenAI-compatible providers the local endpoint can stand in for.
LOCAL_PROVIDERS = ("openai", "mistral", "meta")
LOCAL_KEY = "local-devstack-placeholder-not-a-real-key"
# From supabase/seed.sql: the demo admin, the demo organization, and its "Invoice triage"
# processor, whose "fast" profile is openai gpt-4o-mini.
DEMO_ADMIN = ("d0000000-0000-4000-8000-000000000002", "admin@demo.local")
DEMO_ORG = "de000000-0000-4000-8000-000000000001"
DEMO_PROCESSOR = "dc000000-0000-4000-8000-000000000002"
TOKEN_HOURS = 12


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="gateway port (default: GATEWAY_PORT or 8000)")
    parser.add_argument("--db-port", type=int, default=54322, help="PostgreSQL port (default: 54322)")
    parser.add_argument("--llm-port", type=int, default=0, help="local LLM endpoint port (default: any free one)")
    parser.add_argument("--workdir", type=Path, help="PostgreSQL data and log directory (default: a temporary one)")
    args = parser.parse_args(argv)

    # `kill`, a container stop or a supervisor sends SIGTERM, which uvicorn re-raises after its
    # own shutdown: unwind like Ctrl-C so that PostgreSQL is stopped too, not orphaned.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"Starting PostgreSQL on {HOST}:{args.db_port} and building {DATABASE!r} (migrations + seed)...", flush=True)
    code = 0
    try:
        with running_cluster(port=args.db_port, workdir=args.workdir) as cluster:
            build_database(cluster.host, cluster.port, cluster.user, DATABASE, legacy_privileges=False)
            database_url = f"postgresql://postgres@{cluster.host}:{cluster.port}/{DATABASE}"
            code = asyncio.run(_serve(database_url, args.port, args.llm_port or free_port()))
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C (or SIGTERM) it handled, once it has shut down
        pass
    print("Stopped: gateway, local LLM endpoint and PostgreSQL.", flush=True)
    sys.exit(code)


async def _serve(database_url: str, port: int | None, llm_port: int) -> int:
    llm = await local_llm.start(HOST, llm_port)
    try:
        llm_url = f"http://{HOST}:{llm_port}/v1"
        jwt_secret = secrets.token_urlsafe(48)
        environ = _gateway_environ(os.environ, database_url, jwt_secret, llm_url)
        if port is not None:
            environ["GATEWAY_PORT"] = str(port)
        settings = Settings.from_env(environ)
        config = uvicorn.Config(
            create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        # uvicorn has no start-up event to wait on, only this flag.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if serving.done():  # e.g. the port is taken; uvicorn has said why
            return 1
        print(_banner(settings, database_url, llm_url, _demo_token(jwt_secret), os.environ), flush=True)
        await serving
        return 0
    finally:
        await llm.cleanup()


def _gateway_environ(environ: Mapping[str, str], database_url: str, jwt_secret: str, llm_url: str) -> dict[str, str]:
    # Direct Postgres and locally minted HS256 tokens, whatever a Supabase project in the
    # environment would otherwise select.
    local = {k: v for k, v in environ.items() if k not in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")}
    local |= {"DATABASE_URL": database_url, "SUPABASE_JWT_SECRET": jwt_secret}
    for provider in LOCAL_PROVIDERS:
        if not environ.get(f"{provider.upper()}_API_KEY", "").strip():
            local |= {f"{provider.upper()}_API_KEY": LOCAL_KEY, f"{provider.upper()}_BASE_URL": llm_url}
    return local


def _demo_token(jwt_secret: str) -> str:
    """An access token for the seed's demo admin, shaped like Supabase Auth's."""
    now = int(time.time())
    user_id, email = DEMO_ADMIN
    claims = {
        "iss": "devstack",
        "sub": user_id,
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "iat": now,
        "exp": now + TOKEN_HOURS * 3600,
        "app_metadata": {"organization_id": DEMO_ORG},
        "user_metadata": {},
    }
    return jwt.encode(claims, jwt_secret, algorithm="HS256")


def _banner(settings: Settings, database_url: str, llm_url: str, token: str, environ: Mapping[str, str]) -> str:
    gateway_url = f"http://{settings.host}:{settings.port}"
    real = [p for p in PROVIDERS if environ.get(f"{p.upper()}_API_KEY", "").strip()]
    local = [p for p in LOCAL_PROVIDERS if p not in real]
    body = json.dumps(
        {"processor_id": DEMO_PROCESSOR, "prompt": "Classify this invoice: ACME Corp, 3 widgets, 120 USD"}
    )
    curl = (
        f"curl -sS {gateway_url}/functions/v1/execute-llm \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + token)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
    openai_note = "REAL OpenAI (OPENAI_API_KEY is set)" if "openai" in real else f"the LOCAL echo endpoint at {llm_url}"
    return "\n".join(
        [
            "",
            "Local stack is up. Ctrl-C stops everything.",
            f"  database     {database_url}",
            f"  gateway      {gateway_url}   (OpenAPI: {gateway_url}/schema)",
            f"  local LLM    {llm_url}   LOCAL echo model, no real LLM; stands in for: {', '.join(local) or 'nothing'}",
            f"  real calls   {', '.join(real) or 'none (set <PROVIDER>_API_KEY to call a provider for real)'}",
            f"  token        {DEMO_ADMIN[1]} (admin of Demo Org), valid {TOKEN_HOURS} h",
            "",
            f"Run the seed's 'Invoice triage' processor (openai gpt-4o-mini, answered by {openai_note}):",
            "",
            curl,
            "",
        ]
    )


if __name__ == "__main__":
    main()
