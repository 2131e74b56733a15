"""The Litestar application: `create_app(settings)` wires settings, resources, routes and errors."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import aiohttp
import httpx
from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Message, Scope

from gateway.auth import TokenVerifier
from gateway.breaker import Breakers
from gateway.config_cache import ConfigCache
from gateway.data import Caller, DataAccess
from gateway.data.listener import ConfigChangeListener
from gateway.data.postgres import PostgresDataAccess
from gateway.data.postgrest import PostgrestDataAccess
from gateway.errors import AuthError, GatewayError, ProviderRateLimited
from gateway.http_client import build_custom_provider_client, build_http_client
from gateway.metrics import UNMATCHED, Metrics
from gateway.request import REQUEST_ID_HEADER, GatewayRequest, echoed_request_id
from gateway.routes import Injected
from gateway.routes.config import llm_config
from gateway.routes.execute import execute_llm
from gateway.routes.health import health, ready
from gateway.routes.keys import manage_llm_keys
from gateway.routes.metrics import metrics as metrics_route
from gateway.routes.openai import chat_completions, list_models
from gateway.services import Services
from gateway.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

BEARER = "bearer"
# OpenAI's routes answer errors in OpenAI's shape, with OpenAI's error types.
OPENAI_PATHS = "/v1/"
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def create_app(
    settings: Settings, *, data: DataAccess | None = None, http_client: aiohttp.ClientSession | None = None
) -> Litestar:
    """The gateway app. `data` and `http_client` replace the ones it would open (the caller closes them)."""
    metrics = Metrics(settings.metrics_dir)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            client = http_client
            if client is None:
                client = await stack.enter_async_context(build_http_client(settings))
            custom_client = await stack.enter_async_context(build_custom_provider_client(settings))
            data_access = data
            if data_access is None:
                data_access = await open_data_access(settings, metrics)
                stack.push_async_callback(data_access.close)
            stack.callback(metrics.worker_stopped, os.getpid())
            listen_url = settings.database_listen_url or settings.database_url
            config_cache = ConfigCache(
                settings.config_cache_seconds, invalidated=listen_url is not None, metrics=metrics
            )
            if listen_url is not None and settings.config_cache_seconds > 0:
                listener = ConfigChangeListener(listen_url, config_cache)
                listener.start()
                stack.push_async_callback(listener.close)
            app.state.services = Services(
                settings=settings,
                http_client=client,
                custom_http_client=custom_client,
                data_access=data_access,
                verifier=TokenVerifier(settings, client),
                config_cache=config_cache,
                breakers=Breakers(settings.breaker_failures, settings.breaker_window, settings.breaker_cooldown),
                metrics=metrics,
            )
            yield

    return Litestar(
        route_handlers=[
            execute_llm,
            manage_llm_keys,
            llm_config,
            health,
            ready,
            metrics_route,
            chat_completions,
            list_models,
        ],
        lifespan=[lifespan],
        before_send=[_count_answers(metrics)],
        request_class=GatewayRequest,
        dependencies={
            "services": Provide(_services, sync_to_thread=False),
            "caller": Provide(_provide_caller),
        },
        exception_handlers={
            GatewayError: _gateway_error,
            ValidationException: _validation_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        openapi_config=OpenAPIConfig(
            title="ValidAI LLM gateway",
            version="1.0.0",
            description="Executes LLM calls for signed-in Supabase users with their organization's configuration.",
            components=Components(
                security_schemes={
                    BEARER: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="A Supabase access token (the user's session), or the service-role key.",
                    )
                }
            ),
            security=[{BEARER: []}],
        ),
        cors_config=_cors(settings),
        # The gateway logs through its own loggers; leave the process's logging setup alone.
        logging_config=None,
        debug=False,
    )


def _cors(settings: Settings) -> CORSConfig | None:
    """Browsers may call from these origins, sending what supabase-js's functions client sends.
    Tokens travel in the Authorization header, never in cookies, so no credentials mode."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["authorization", "content-type", "apikey", "x-client-info", "x-region", "x-request-id"],
        expose_headers=["retry-after", "x-request-id"],
    )


async def open_data_access(settings: Settings, metrics: Metrics | None = None) -> DataAccess:
    """The adapter the settings choose: direct Postgres when DATABASE_URL is set, else PostgREST."""
    if settings.database_url is not None:
        return await PostgresDataAccess.connect(
            settings.database_url,
            max_size=settings.database_pool_size,
            pool_timeout=settings.database_timeout,
            metrics=metrics,
        )
    if settings.supabase_url is None or settings.supabase_service_role_key is None:
        raise SettingsError("DATABASE_URL, or SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY, must be set")
    timeout = httpx.Timeout(settings.database_timeout, connect=settings.connect_timeout)
    return await PostgrestDataAccess.connect(
        settings.supabase_url, settings.supabase_service_role_key, http_timeout=timeout
    )


def _count_answers(metrics: Metrics) -> Callable[[Message, Scope], Awaitable[None]]:
    """llm_gateway_requests_total, counted as each answer starts: by route template, not path.
    A coroutine: Litestar would run a plain function in a thread, twice per request."""

    async def count(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            endpoint = scope.get("path_template", UNMATCHED)
            metrics.requests.labels(endpoint, str(message["status"])).inc()

    return count


def _services(state: State) -> Services:
    return cast(Services, state.services)


async def _provide_caller(request: Request[Any, Any, State], services: Injected[Services]) -> Caller:
    return await services.verifier.caller(request.headers.get("authorization"))


def _error(
    request: Request[Any, Any, State],
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[Any]:
    """{"error": {"code", "message"}}; on the OpenAI-compatible routes OpenAI's {"error":
    {"message", "type", "code", "param"}}, so its SDKs raise their matching exception."""
    if request.scope["path"].startswith(OPENAI_PATHS):
        kind = _OPENAI_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"message": message, "type": kind, "code": code, "param": None, **extra}
        return Response({"error": body}, status_code=status, headers=headers)
    return Response({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


def _gateway_error(request: Request[Any, Any, State], exc: GatewayError) -> Response[Any]:
    headers = {}
    if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
        headers["retry-after"] = str(exc.retry_after)
    if isinstance(exc, AuthError):
        headers["www-authenticate"] = 'Bearer error="invalid_token"'
    if (request_id := echoed_request_id(request)) is not None:
        headers[REQUEST_ID_HEADER] = request_id
    extra = {} if exc.attempts is None else {"attempts": exc.attempts}
    return _error(request, exc.status, exc.code, exc.message, headers, **extra)


def _validation_error(request: Request[Any, Any, State], exc: ValidationException) -> Response[Any]:
    details = exc.extra if isinstance(exc.extra, list) else []
    problems = "; ".join(f"{d.get('key')}: {d.get('message')}" for d in details if isinstance(d, dict))
    return _error(request, 400, "invalid_request", f"invalid request: {problems or exc.detail}", details=details)


def _http_error(request: Request[Any, Any, State], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors: unknown route, wrong method, body too large, and its internal ones."""
    if exc.status_code >= 500:
        return _unexpected_error(request, exc)
    if exc.status_code == 400:  # a body that does not decode
        return _error(request, 400, "invalid_request", f"invalid request: {exc.detail}")
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    return _error(request, exc.status_code, code.get(exc.status_code, "http_error"), exc.detail, exc.headers)


def _unexpected_error(request: Request[Any, Any, State], exc: Exception) -> Response[Any]:
    # Type and place only: an exception's message or locals could carry a key or a token.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "unknown"
    logger.error("unexpected %s at %s on %s %s", type(exc).__name__, where, request.method, request.url.path)
    return _error(request, 500, "internal_error", "internal error")
