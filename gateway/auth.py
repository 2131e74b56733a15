"""Verification of Supabase access tokens, and the organization a verified caller acts for.

Supabase Auth signs with the project's legacy HS256 secret or with asymmetric keys (ES256/RS256)
published at `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. Each algorithm is verified only with
its own kind of key: HS256 with the configured secret, never with a key taken from the JWKS (a
published symmetric key would let anyone sign), and ES256/RS256 only with JWKS keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import aiohttp
import jwt

from gateway.data import Caller
from gateway.errors import AuthError, BadRequest, ForbiddenError, GatewayError
from gateway.settings import Settings

logger = logging.getLogger(__name__)

USER_AUDIENCE = "authenticated"
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
# An unknown key id triggers a JWKS refetch (key rotation), but at most this often, so
# tokens with made-up key ids cannot make the gateway hammer the auth server.
_MIN_REFETCH_SECONDS = 30.0
_VERIFIED_CACHE_SIZE = 4096


class SigningKeysUnavailable(GatewayError):
    status = 503
    code = "auth_unavailable"


class JwksCache:
    """The project's public signing keys, fetched with the shared client and cached."""

    def __init__(self, client: aiohttp.ClientSession, url: str, ttl: float, timeout: float) -> None:
        self._client = client
        self._url = url
        self._ttl = ttl
        # The shared client's read timeout suits LLM calls; the auth server must answer quickly.
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str, algorithm: str) -> jwt.PyJWK:
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._ttl
        unknown = kid not in self._keys and (self._fetched_at is None or now - self._fetched_at > _MIN_REFETCH_SECONDS)
        if stale or unknown:
            await self._refresh(seen=self._fetched_at)
        key = self._keys.get(kid)
        if key is None or key.algorithm_name != algorithm:
            raise AuthError("the token is not signed by a key of this project")
        return key

    async def _refresh(self, seen: float | None) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another request refreshed while this one waited for the lock
            try:
                async with self._client.get(
                    self._url, headers={"accept": "application/json"}, timeout=self._timeout, allow_redirects=False
                ) as response:
                    response.raise_for_status()
                    document = await response.json(content_type=None)
                keys = [
                    key
                    for key in jwt.PyJWKSet.from_dict(document)
                    if key.key_id and key.algorithm_name in ASYMMETRIC_ALGORITHMS
                ]
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
                if not self._keys:
                    logger.error("cannot load signing keys from the JWKS endpoint: %s", type(exc).__name__)
                    raise SigningKeysUnavailable("signing keys cannot be loaded; try again later") from None
                # Keep verifying with the keys we have; an outage of the auth server must not
                # turn every request into a 401.
                logger.warning("JWKS refresh failed (%s); using cached keys", type(exc).__name__)
                self._fetched_at = time.monotonic()
                return
            self._keys = {str(key.key_id): key for key in keys}
            self._fetched_at = time.monotonic()


class TokenVerifier:
    def __init__(self, settings: Settings, client: aiohttp.ClientSession) -> None:
        self._secret = settings.supabase_jwt_secret
        jwks_url = settings.jwks_url
        self._jwks = (
            JwksCache(client, jwks_url, settings.jwks_cache_seconds, settings.connect_timeout) if jwks_url else None
        )
        # Claims of tokens already verified, by exact token: a session sends the same token for
        # up to an hour, and checking it again costs more than the rest of the gateway's own work.
        # Expiry is checked on every use; membership is the database's check on every call.
        self._verified: dict[str, dict[str, Any]] = {}

    async def caller(self, authorization: str | None) -> Caller:
        """The verified caller of an `Authorization: Bearer <token>` header value."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("an Authorization: Bearer <access token> header is required")
        claims = await self._verified_claims(token)
        role = claims.get("role")
        if role == "service_role":
            return Caller(role="service_role", claims=claims, token=token)
        if role != USER_AUDIENCE:
            raise AuthError("the token is neither a signed-in user's nor the service role's")
        audience = claims.get("aud")
        if USER_AUDIENCE not in (audience if isinstance(audience, list) else [audience]):
            raise AuthError("the token is not meant for signed-in users (audience)")
        if not _is_uuid(claims.get("sub")):
            raise AuthError("the token names no user")
        return Caller(role="authenticated", claims=claims, token=token)

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is not None and cached["exp"] > time.time():
            return cached
        claims = await self._verify(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude but bounded; refilling costs one verification per token
        self._verified[token] = claims
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret is not None:
            key = self._secret
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise AuthError("the token has no key id")
            key = await self._jwks.key(kid, algorithm)
        else:
            raise AuthError(
                "the token's algorithm is not accepted: HS256 with the project secret, ES256/RS256 with its keys"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                # The audience is checked per role by the caller: service-role keys carry none.
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.PyJWTError:
            raise AuthError("the token's signature or claims are invalid") from None
        return claims


def organization_of(caller: Caller, requested: uuid.UUID | None) -> uuid.UUID:
    """The organization a request acts for.

    Signed-in users act for `app_metadata.organization_id` of their token (the database then
    checks they are still a member); the service role names the organization explicitly.
    """
    if caller.role == "service_role":
        if requested is None:
            raise BadRequest("organization_id is required with a service-role token")
        return requested
    organization_id = caller.organization_id
    if organization_id is None:
        raise ForbiddenError("the token names no organization (app_metadata.organization_id)")
    if requested is not None and requested != organization_id:
        raise ForbiddenError("organization_id differs from the token's organization")
    return organization_id


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
