"""SQLSTATE → gateway exception: the one mapping both data adapters use.

The database's own messages are written for callers (see the migrations), so mapped errors carry
them; anything unexpected gets a generic message naming only the SQLSTATE.
"""

from __future__ import annotations

from gateway.errors import (
    BadRequest,
    BudgetExceeded,
    ConfigError,
    DatabaseUnavailable,
    ForbiddenError,
    GatewayError,
    NotFoundError,
)

REDACTED = "[redacted]"

_BY_CODE: dict[str, type[GatewayError]] = {
    "42501": ForbiddenError,
    "PT402": BudgetExceeded,
    "PT404": NotFoundError,
    "P0001": BadRequest,
    "PT503": ConfigError,
}
# Classes: 22 data exception (invalid parameter, bad uuid, null value); 08 connection exception,
# 53 insufficient resources, 57 operator intervention (shutdown, statement timeout).
_BY_CLASS: dict[str, type[GatewayError]] = {
    "22": BadRequest,
    "08": DatabaseUnavailable,
    "53": DatabaseUnavailable,
    "57": DatabaseUnavailable,
}


def unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable("the database is unavailable")


def database_error(
    sqlstate: str | None, message: str | None, hint: str | None = None, *, secret: str | None = None
) -> GatewayError:
    """The gateway exception for a database error. `secret` (e.g. an API key that was a parameter)
    is blanked out of the message in case the database ever echoes it."""
    code = sqlstate or ""
    kind = _BY_CODE.get(code) or _BY_CLASS.get(code[:2])
    if kind is DatabaseUnavailable:
        return unavailable()
    if kind is None:
        return GatewayError(f"unexpected database error (SQLSTATE {code or 'unknown'})")
    text = message or kind.code.replace("_", " ")
    if hint:
        text = f"{text}. {hint}"
    if secret:
        text = text.replace(secret, REDACTED)
    return kind(text)
