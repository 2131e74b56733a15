"""Shared fixtures and helpers of the gateway's end-to-end tests (no tests of its own).

The app is built exactly as `python -m gateway` builds it — `Settings.from_env` over an
environment, `create_app`, its lifespan opening the data adapter and the HTTP client — against a
fresh real database per test and the fake providers on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.providers import PROVIDERS
from gateway.settings import Settings
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.providers import FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Org, Tenants

__test__ = False  # helpers only; the test modules import what they use

JWT_SECRET = "test-only-jwt-secret-with-at-least-32-characters"
SYSTEM_KEYS = {provider: f"sk-system-{provider}-0123456789abcdefWXYZ" for provider in PROVIDERS}
# One current catalog model per provider (the seed prices all but Meta's).
MODELS = {
    "anthropic": "claude-haiku-4-5",
    "openai": "gpt-4o-mini",
    "mistral": "mistral-small-latest",
    "google": "gemini-2.5-flash",
    "meta": "Llama-4-Scout-17B-16E-Instruct-FP8",
}
ADAPTERS = ("postgres", "postgrest")
ROOT = Path(__file__).resolve().parents[2]


def sign(claims: dict[str, Any], key: Any = JWT_SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 3600, **claims}, key, algorithm=algorithm, headers=headers or None)


SERVICE_ROLE_KEY = sign({"role": "service_role", "iss": "supabase"})


def user_claims(tenants: Tenants, user_id: uuid.UUID, org: Org | None = None, **overrides: Any) -> dict[str, Any]:
    """The claims Supabase Auth puts in a signed-in user's access token."""
    return {**tenants.claims(user_id, org), "role": "authenticated", **overrides}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def database_url(db: Database) -> str:
    return f"postgresql://postgres@{db.host}:{db.port}/{db.name}"


def gateway_env(db: Database, providers: FakeProviders, **overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url(db),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "PROVIDER_CONNECT_TIMEOUT_SECONDS": "2",
        "PROVIDER_READ_TIMEOUT_SECONDS": "5",
        "DATABASE_POOL_SIZE": "4",
        # One provider answer per call, so a test of one failure sees exactly it; the retries have
        # their own tests (test_gateway_retries.py), with the product's default and others.
        "PROVIDER_MAX_RETRIES": "0",
    }
    for provider in PROVIDERS:
        env[f"{provider.upper()}_API_KEY"] = SYSTEM_KEYS[provider]
        env[f"{provider.upper()}_BASE_URL"] = providers.base_url(provider)
    return {**env, **overrides}


@dataclass
class Gateway:
    client: AsyncTestClient[Any]
    db: Database
    tenants: Tenants
    providers: FakeProviders
    settings: Settings
    postgrest: FakePostgrest | None = field(default=None)

    def token(self, user_id: uuid.UUID, org: Org | None = None, **overrides: Any) -> str:
        return sign(user_claims(self.tenants, user_id, org, **overrides))

    async def execute(self, token: str | None, **body: Any) -> httpx.Response:
        headers = bearer(token) if token is not None else {}
        return await self.client.post("/functions/v1/execute-llm", json=body, headers=headers)

    async def manage_keys(self, token: str, **body: Any) -> httpx.Response:
        return await self.client.post("/functions/v1/manage-llm-keys", json=body, headers=bearer(token))

    def usage_rows(self) -> list[dict[str, Any]]:
        return self.db.run("select * from llm_usage_logs order by created_at, id")

    def processor_for(self, provider: str, settings: dict[str, Any] | None = None, org: Org | None = None) -> uuid.UUID:
        """A new processor of `org` (acme) whose own profile uses `provider`'s test model."""
        org = org or self.tenants.acme
        profile = f"{provider}-test"
        spec = {"provider": provider, "model": MODELS[provider], "settings": settings or {}}
        self.db.run(
            "update organizations set llm_configuration = jsonb_set(llm_configuration, array['profiles', %s], %s)"
            " where id = %s",
            (profile, json.dumps(spec), org.id),
        )
        rows = self.db.run(
            "insert into processors (organization_id, name, configuration) values (%s, %s, %s) returning id",
            (org.id, f"{profile} processor", json.dumps({"llm_profile": profile})),
        )
        return uuid.UUID(str(rows[0]["id"]))

    def run_of(self, processor_id: uuid.UUID, org: Org | None = None) -> uuid.UUID:
        org = org or self.tenants.acme
        rows = self.db.run(
            "insert into runs (organization_id, processor_id, status) values (%s, %s, 'running') returning id",
            (org.id, processor_id),
        )
        return uuid.UUID(str(rows[0]["id"]))


@contextmanager
def command(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@asynccontextmanager
async def running_gateway(
    db: Database, tenants: Tenants, providers: FakeProviders, adapter: str = "postgres", **env: str
) -> AsyncIterator[Gateway]:
    postgrest = None
    environ = gateway_env(db, providers, **env)
    if adapter == "postgrest":
        postgrest = FakePostgrest(db.dsn(), JWT_SECRET).start()
        del environ["DATABASE_URL"]
        environ |= {"SUPABASE_URL": postgrest.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_ROLE_KEY}
    settings = Settings.from_env(environ)
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Gateway(client, db, tenants, providers, settings, postgrest)
    finally:
        if postgrest is not None:
            postgrest.close()


@pytest.fixture(scope="session")
def fake_providers() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def providers(fake_providers: FakeProviders) -> Iterator[FakeProviders]:
    fake_providers.reset()
    yield fake_providers
    fake_providers.reset()


@pytest.fixture
async def gateway(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    """The gateway on the direct Postgres adapter."""
    async with running_gateway(db, tenants, providers) as running:
        yield running


@pytest.fixture(params=ADAPTERS)
async def any_gateway(
    request: pytest.FixtureRequest, db: Database, tenants: Tenants, providers: FakeProviders
) -> AsyncIterator[Gateway]:
    """The gateway on each data adapter in turn: Postgres, and PostgREST through the fake."""
    async with running_gateway(db, tenants, providers, request.param) as running:
        yield running
