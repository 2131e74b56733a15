"""Who may call the gateway: every way a Supabase access token can be wrong, and the right ones."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.utils import base64url_encode

from tests.fakes.providers import FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import JWT_SECRET, SERVICE_ROLE_KEY, Gateway, bearer, running_gateway, sign

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class Jwks:
    """A project's auth server on 127.0.0.1, publishing an ES256 and an RS256 public key."""

    def __init__(self) -> None:
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0
        self.keys = [
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key())), "kid": "ec-1", "alg": "ES256"},
            {
                **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key())),
                "kid": "rsa-1",
                "alg": "RS256",
            },
        ]
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.close()


@pytest.fixture
async def jwks_gateway(db: Database, tenants: Tenants, providers: FakeProviders, jwks: Jwks) -> AsyncIterator[Gateway]:
    """The gateway of a project with asymmetric signing keys (and the legacy secret still set)."""
    async with running_gateway(db, tenants, providers, SUPABASE_URL=jwks.url) as gw:
        yield gw


async def config_status(gw: Gateway, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = await gw.client.get("/functions/v1/llm-config", headers=headers)
    return response.status_code, response.json()


# Rejected tokens ------------------------------------------------------------------------------------


async def test_request_without_token_is_401(gateway: Gateway) -> None:
    status, body = await config_status(gateway, {})
    assert status == 401 and body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c"])
async def test_malformed_authorization_is_401(gateway: Gateway, header: str) -> None:
    status, _ = await config_status(gateway, {"authorization": header})
    assert status == 401


async def test_token_signed_with_another_secret_is_401(gateway: Gateway) -> None:
    claims = gateway.tenants.claims(gateway.tenants.acme.member) | {"role": "authenticated"}
    token = sign(claims, key="another-projects-secret-with-32-characters!")
    status, _ = await config_status(gateway, bearer(token))
    assert status == 401


async def test_unsigned_token_with_alg_none_is_401(gateway: Gateway) -> None:
    claims = gateway.tenants.claims(gateway.tenants.acme.member) | {"role": "authenticated"}
    token = jwt.encode({**claims, "exp": int(time.time()) + 3600}, key=None, algorithm="none")
    status, _ = await config_status(gateway, bearer(token))
    assert status == 401


async def test_expired_token_is_401(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.member, exp=int(time.time()) - 10)
    response = await gateway.execute(token, prompt="hi")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert gateway.providers.requests == [] and gateway.usage_rows() == []


async def test_token_that_expires_after_a_successful_call_is_then_401(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.member, exp=int(time.time()) + 2)
    assert (await config_status(gateway, bearer(token)))[0] == 200
    await asyncio.sleep(2.1)
    assert (await config_status(gateway, bearer(token)))[0] == 401


async def test_token_without_expiry_is_401(gateway: Gateway) -> None:
    claims = gateway.tenants.claims(gateway.tenants.acme.member) | {"role": "authenticated"}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    status, _ = await config_status(gateway, bearer(token))
    assert status == 401


async def test_wrong_audience_is_401(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.member, aud="some-other-api")
    status, _ = await config_status(gateway, bearer(token))
    assert status == 401


async def test_anon_key_is_401(gateway: Gateway) -> None:
    status, _ = await config_status(gateway, bearer(sign({"role": "anon", "iss": "supabase"})))
    assert status == 401


async def test_user_token_without_subject_is_401(gateway: Gateway) -> None:
    claims = gateway.tenants.claims(gateway.tenants.acme.member) | {"role": "authenticated"}
    del claims["sub"]
    status, _ = await config_status(gateway, bearer(sign(claims)))
    assert status == 401


# Verified tokens that may not act -----------------------------------------------------------------


async def test_token_without_organization_claim_is_403(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.member, app_metadata={})
    response = await gateway.execute(token, prompt="hi")
    assert response.status_code == 403
    assert gateway.providers.requests == []


async def test_organization_in_user_metadata_only_is_403(gateway: Gateway) -> None:
    # user_metadata is editable by the user: it must never decide the organization.
    acme = str(gateway.tenants.acme.id)
    token = gateway.token(gateway.tenants.acme.member, app_metadata={}, user_metadata={"organization_id": acme})
    response = await gateway.execute(token, prompt="hi")
    assert response.status_code == 403
    assert gateway.providers.requests == []


async def test_stranger_whose_token_names_an_organization_is_403(gateway: Gateway) -> None:
    response = await gateway.execute(gateway.token(gateway.tenants.stranger, gateway.tenants.acme), prompt="hi")
    assert response.status_code == 403
    assert gateway.providers.requests == []


async def test_removed_member_gets_403_everywhere(gateway: Gateway) -> None:
    gw = gateway
    gw.db.run("delete from organization_members where user_id = %s", (gw.tenants.acme.admin,))
    token = gw.token(gw.tenants.acme.admin)
    assert (await gw.execute(token, prompt="hi")).status_code == 403
    assert (await config_status(gw, bearer(token)))[0] == 403
    assert (await gw.manage_keys(token, action="list")).status_code == 403


async def test_another_organizations_processor_is_404_for_config_too(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/functions/v1/llm-config",
        params={"processor_id": str(gateway.tenants.bystander.processor)},
        headers=bearer(gateway.token(gateway.tenants.acme.member)),
    )
    assert response.status_code == 404


# Service role -----------------------------------------------------------------------------------


async def test_service_role_key_is_accepted_for_an_explicit_organization(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/functions/v1/llm-config",
        params={"organization_id": str(gateway.tenants.acme.id)},
        headers=bearer(SERVICE_ROLE_KEY),
    )
    assert response.status_code == 200
    assert response.json()["provider"] == "openai"


async def test_service_role_claim_signed_with_another_secret_is_401(gateway: Gateway) -> None:
    forged = sign({"role": "service_role", "iss": "supabase"}, key="not-the-projects-secret-but-32-chars-long")
    response = await gateway.execute(forged, organization_id=str(gateway.tenants.acme.id), prompt="hi")
    assert response.status_code == 401


# Asymmetric signing keys (JWKS) ----------------------------------------------------------------------


def asymmetric(gw: Gateway, jwks: Jwks, algorithm: str, kid: str, **overrides: Any) -> str:
    key = jwks.ec_key if algorithm == "ES256" else jwks.rsa_key
    claims = {**gw.tenants.claims(gw.tenants.acme.member), "role": "authenticated", **overrides}
    return sign(claims, key=key, algorithm=algorithm, kid=kid)


@pytest.mark.parametrize(("algorithm", "kid"), [("ES256", "ec-1"), ("RS256", "rsa-1")])
async def test_tokens_signed_with_the_projects_published_keys_are_accepted(
    jwks_gateway: Gateway, jwks: Jwks, algorithm: str, kid: str
) -> None:
    response = await jwks_gateway.execute(asymmetric(jwks_gateway, jwks, algorithm, kid), prompt="hi")
    assert response.status_code == 200, response.text


async def test_signing_keys_are_fetched_once_and_cached(jwks_gateway: Gateway, jwks: Jwks) -> None:
    for _ in range(3):
        status, _ = await config_status(jwks_gateway, bearer(asymmetric(jwks_gateway, jwks, "ES256", "ec-1")))
        assert status == 200
    assert jwks.fetches == 1


async def test_unknown_key_id_is_401(jwks_gateway: Gateway, jwks: Jwks) -> None:
    status, _ = await config_status(jwks_gateway, bearer(asymmetric(jwks_gateway, jwks, "ES256", "ec-unknown")))
    assert status == 401


async def test_key_of_another_project_under_a_known_key_id_is_401(jwks_gateway: Gateway) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    claims = {**jwks_gateway.tenants.claims(jwks_gateway.tenants.acme.member), "role": "authenticated"}
    status, _ = await config_status(jwks_gateway, bearer(sign(claims, key=other, algorithm="ES256", kid="ec-1")))
    assert status == 401


async def test_public_key_used_as_an_hmac_secret_is_401(jwks_gateway: Gateway, jwks: Jwks) -> None:
    # Algorithm confusion: HS256 is verified with the configured secret only, never a JWKS key.
    pem = jwks.ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {**jwks_gateway.tenants.claims(jwks_gateway.tenants.acme.member), "role": "authenticated"}
    claims["exp"] = int(time.time()) + 60
    header = {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}
    signing_input = b".".join(base64url_encode(json.dumps(part).encode()) for part in (header, claims))
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64url_encode(signature)).decode()
    status, _ = await config_status(jwks_gateway, bearer(forged))
    assert status == 401


async def test_expired_asymmetric_token_is_401(jwks_gateway: Gateway, jwks: Jwks) -> None:
    token = asymmetric(jwks_gateway, jwks, "ES256", "ec-1", exp=int(time.time()) - 10)
    status, _ = await config_status(jwks_gateway, bearer(token))
    assert status == 401


async def test_asymmetric_token_for_another_audience_is_401(jwks_gateway: Gateway, jwks: Jwks) -> None:
    status, _ = await config_status(
        jwks_gateway, bearer(asymmetric(jwks_gateway, jwks, "RS256", "rsa-1", aud="elsewhere"))
    )
    assert status == 401


async def test_unreachable_signing_keys_are_503_not_401(
    db: Database, tenants: Tenants, providers: FakeProviders, jwks: Jwks
) -> None:
    jwks.close()
    async with running_gateway(db, tenants, providers, SUPABASE_URL=jwks.url) as gw:
        token = sign(
            {**tenants.claims(tenants.acme.member), "role": "authenticated"},
            key=jwks.ec_key,
            algorithm="ES256",
            kid="ec-1",
        )
        status, body = await config_status(gw, bearer(token))
        assert status == 503 and body["error"]["code"] == "auth_unavailable"


async def test_asymmetric_tokens_need_a_configured_project_url(gateway: Gateway, jwks: Jwks) -> None:
    # This gateway has only the HS256 secret: it has no published keys to check an ES256 token.
    status, _ = await config_status(gateway, bearer(asymmetric(gateway, jwks, "ES256", "ec-1")))
    assert status == 401
