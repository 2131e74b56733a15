"""The gateway's request class (every body a client sends gets a client error, never a crash), and
the request id a request is known by in its answer, its usage rows and its log lines."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import SerializationException

from gateway.errors import BadRequest

REQUEST_ID_HEADER = "x-request-id"
# Where the request id is kept for the error handlers: the ASGI scope, cheaper than request.state.
REQUEST_ID_SCOPE_KEY = "gateway.request_id"


class GatewayRequest(Request[Any, Any, State]):
    async def json(self) -> Any:
        # msgspec raises RecursionError for JSON nested about 1,000 levels deep, which Litestar
        # does not treat as a decoding error; it is one (a 400 like any other malformed body).
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException("the JSON body is nested too deeply") from None


def request_id_of(request: Request[Any, Any, State]) -> uuid.UUID:
    """The caller's X-Request-Id (a UUID), or a new one; kept on the request for its answer."""
    given = request.headers.get(REQUEST_ID_HEADER)
    try:
        request_id = uuid.uuid4() if given is None else uuid.UUID(given)
    except ValueError:
        raise BadRequest(f"{REQUEST_ID_HEADER} must be a UUID") from None
    request.scope[REQUEST_ID_SCOPE_KEY] = str(request_id)  # type: ignore[literal-required]
    return request_id


def echoed_request_id(request: Request[Any, Any, State]) -> str | None:
    """The request id to echo in an answer, once the route has taken it."""
    value: str | None = request.scope.get(REQUEST_ID_SCOPE_KEY)  # type: ignore[assignment]
    return value
