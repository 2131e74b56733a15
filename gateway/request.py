"""The gateway's request class: every body a client sends gets a client error, never a crash."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import SerializationException


class GatewayRequest(Request[Any, Any, State]):
    async def json(self) -> Any:
        # msgspec raises RecursionError for JSON nested about 1,000 levels deep, which Litestar
        # does not treat as a decoding error; it is one (a 400 like any other malformed body).
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException("the JSON body is nested too deeply") from None
