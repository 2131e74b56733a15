"""The gateway's configuration, read from the environment in one place.

`Settings.from_env()` validates every variable up front; a missing or malformed one raises
`SettingsError` naming it, so a misconfigured deployment fails at start-up, not on the first call.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from gateway.outbound_guard import Network
from gateway.providers import DEFAULT_BASE_URLS, PROVIDERS

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# The config cache's safety net when change notifications keep it fresh.
INVALIDATED_CACHE_SECONDS = 60.0


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it, never its value."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)
    """DATABASE_URL: direct Postgres (psycopg pool); takes precedence over the PostgREST adapter."""

    database_listen_url: str | None = field(default=None, repr=False)
    """DATABASE_LISTEN_URL: a direct or session-mode connection for the config cache's change
    notifications, when DATABASE_URL goes through a transaction pooler (which does not carry them)."""
    supabase_url: str | None = None
    """SUPABASE_URL: the project URL; PostgREST RPC (without DATABASE_URL) and the JWKS endpoint."""

    supabase_service_role_key: str | None = field(default=None, repr=False)
    """SUPABASE_SERVICE_ROLE_KEY: the service-role key for PostgREST calls with service rights."""

    supabase_jwt_secret: str | None = field(default=None, repr=False)
    """SUPABASE_JWT_SECRET: the project's legacy HS256 JWT secret."""

    jwks_cache_seconds: float = 600.0
    """SUPABASE_JWKS_CACHE_SECONDS: how long fetched signing keys are trusted before a refetch."""

    api_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    """<PROVIDER>_API_KEY: system keys, used when an organization has stored none."""

    base_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_BASE_URLS)))
    """<PROVIDER>_BASE_URL: provider endpoints (proxies, regional endpoints, local fakes)."""

    connect_timeout: float = 5.0
    """PROVIDER_CONNECT_TIMEOUT_SECONDS: time allowed to connect to a provider."""

    read_timeout: float = 300.0
    """PROVIDER_READ_TIMEOUT_SECONDS: time allowed between bytes of a provider's answer; a
    non-streamed completion sends nothing until it is done, so this bounds generation time."""

    max_connections: int = 100
    """PROVIDER_MAX_CONNECTIONS: pooled connections to providers, per worker."""
    max_retries: int = 1
    """PROVIDER_MAX_RETRIES: extra attempts on the same provider after a retryable failure."""
    breaker_failures: int = 5
    """PROVIDER_BREAKER_FAILURES: consecutive retryable failures that open a provider's breaker."""
    breaker_window: float = 30.0
    """PROVIDER_BREAKER_WINDOW_SECONDS: within how long those failures must come."""
    breaker_cooldown: float = 30.0
    """PROVIDER_BREAKER_COOLDOWN_SECONDS: how long an open breaker skips its provider before a trial call."""

    custom_provider_allowed_networks: tuple[Network, ...] = ()
    """GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS: comma-separated CIDRs an organization's custom
    provider may reach although private (self-hosted models inside the operator's network);
    cloud metadata addresses stay refused. Mirror them in private.custom_provider_allowed_networks."""
    request_deadline: float = 120.0
    """GATEWAY_REQUEST_DEADLINE_SECONDS: all of a request's attempts and waits end by then (504);
    a request may ask for less with `timeout_seconds`."""

    database_pool_size: int = 10
    """DATABASE_POOL_SIZE: maximum database connections per worker (DATABASE_URL only)."""

    database_timeout: float = 5.0
    """DATABASE_TIMEOUT_SECONDS: wait for a pooled connection (DATABASE_URL) or a PostgREST answer."""

    config_cache_seconds: float = 0.0
    """GATEWAY_CONFIG_CACHE_SECONDS: the longest a worker reuses execute-llm's configuration and key
    lookup. With DATABASE_URL (default 60) entries are dropped as soon as the database announces a
    change, and this is only a safety net; with PostgREST (default 0: off) nothing announces
    changes, and a change may take this long to apply."""
    cors_origins: tuple[str, ...] = ()
    """GATEWAY_CORS_ORIGINS: comma-separated browser origins allowed to call the gateway ("*" for any)."""

    host: str = "127.0.0.1"
    """GATEWAY_HOST: interface `python -m gateway` listens on (0.0.0.0 in a container)."""

    port: int = 8000
    """GATEWAY_PORT: port `python -m gateway` listens on."""

    workers: int = 1
    """GATEWAY_WORKERS: uvicorn worker processes."""

    log_level: str = "info"
    """GATEWAY_LOG_LEVEL: one of critical, error, warning, info, debug."""

    metrics_dir: str | None = None
    """PROMETHEUS_MULTIPROC_DIR: where the workers share their metrics (`python -m gateway` makes
    one for several workers when unset); one worker keeps them in memory."""

    @property
    def data_adapter(self) -> Literal["postgres", "postgrest"]:
        return "postgres" if self.database_url else "postgrest"

    @property
    def jwks_url(self) -> str | None:
        return f"{self.supabase_url}/auth/v1/.well-known/jwks.json" if self.supabase_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        database_url = env.url("DATABASE_URL", ("postgres", "postgresql"))
        listen_url = env.url("DATABASE_LISTEN_URL", ("postgres", "postgresql"))
        supabase_url = env.url("SUPABASE_URL", ("http", "https"))
        service_role_key = env.text("SUPABASE_SERVICE_ROLE_KEY")
        jwt_secret = env.text("SUPABASE_JWT_SECRET")
        if database_url is None:
            if supabase_url is None:
                raise SettingsError("DATABASE_URL, or SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY, must be set")
            if service_role_key is None:
                raise SettingsError("SUPABASE_SERVICE_ROLE_KEY must be set to use SUPABASE_URL without DATABASE_URL")
        if jwt_secret is None and supabase_url is None:
            raise SettingsError("SUPABASE_JWT_SECRET or SUPABASE_URL (for its JWKS) must be set to verify tokens")
        api_keys = {p: key for p in PROVIDERS if (key := env.text(f"{p.upper()}_API_KEY")) is not None}
        base_urls = {p: env.url(f"{p.upper()}_BASE_URL", ("http", "https")) or DEFAULT_BASE_URLS[p] for p in PROVIDERS}
        return cls(
            database_url=database_url,
            database_listen_url=listen_url,
            supabase_url=supabase_url,
            supabase_service_role_key=service_role_key,
            supabase_jwt_secret=jwt_secret,
            jwks_cache_seconds=env.number("SUPABASE_JWKS_CACHE_SECONDS", cls.jwks_cache_seconds),
            api_keys=MappingProxyType(api_keys),
            base_urls=MappingProxyType(base_urls),
            connect_timeout=env.number("PROVIDER_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout),
            read_timeout=env.number("PROVIDER_READ_TIMEOUT_SECONDS", cls.read_timeout),
            max_connections=env.integer("PROVIDER_MAX_CONNECTIONS", cls.max_connections, 1, 10_000),
            max_retries=env.integer("PROVIDER_MAX_RETRIES", cls.max_retries, 0, 10),
            request_deadline=env.number("GATEWAY_REQUEST_DEADLINE_SECONDS", cls.request_deadline),
            breaker_failures=env.integer("PROVIDER_BREAKER_FAILURES", cls.breaker_failures, 1, 1_000),
            breaker_window=env.number("PROVIDER_BREAKER_WINDOW_SECONDS", cls.breaker_window),
            breaker_cooldown=env.number("PROVIDER_BREAKER_COOLDOWN_SECONDS", cls.breaker_cooldown),
            custom_provider_allowed_networks=env.networks("GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS"),
            database_pool_size=env.integer("DATABASE_POOL_SIZE", cls.database_pool_size, 1, 1_000),
            database_timeout=env.number("DATABASE_TIMEOUT_SECONDS", cls.database_timeout),
            config_cache_seconds=env.number(
                "GATEWAY_CONFIG_CACHE_SECONDS",
                INVALIDATED_CACHE_SECONDS if (listen_url or database_url) is not None else 0.0,
                zero_allowed=True,
            ),
            cors_origins=env.origins("GATEWAY_CORS_ORIGINS"),
            host=env.text("GATEWAY_HOST") or cls.host,
            port=env.integer("GATEWAY_PORT", cls.port, 1, 65_535),
            workers=env.integer("GATEWAY_WORKERS", cls.workers, 1, 256),
            log_level=env.choice("GATEWAY_LOG_LEVEL", LOG_LEVELS, cls.log_level),
            metrics_dir=env.text("PROMETHEUS_MULTIPROC_DIR"),
        )


@dataclass(frozen=True)
class _Env:
    """Typed reads of environment variables; an empty value counts as unset."""

    environ: Mapping[str, str]

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            # postgresql:///dbname (a local socket) has no host; web URLs must have one.
            valid = parts.scheme in schemes and (bool(parts.hostname) or not parts.scheme.startswith("http"))
        except ValueError:
            valid = False
        if not valid:
            raise SettingsError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL")
        return value.rstrip("/") if parts.scheme.startswith("http") else value

    def origins(self, name: str) -> tuple[str, ...]:
        origins = tuple(o.strip().rstrip("/") for o in (self.text(name) or "").split(",") if o.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
                raise SettingsError(f"{name} must list origins like https://app.example.com, or be *")
        return origins

    def networks(self, name: str) -> tuple[Network, ...]:
        try:
            return tuple(ipaddress.ip_network(n.strip()) for n in (self.text(name) or "").split(",") if n.strip())
        except ValueError:
            raise SettingsError(f"{name} must list networks like 10.0.0.0/8, fd00::/8 (host bits zero)") from None

    def number(self, name: str, default: float, *, zero_allowed: bool = False) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero_allowed):
            raise SettingsError(f"{name} must be a {'non-negative' if zero_allowed else 'positive'} number of seconds")
        return number

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name} must be an integer from {minimum} to {maximum}")
        return number

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}")
        return value
