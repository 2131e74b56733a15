"""The gateway's single exception hierarchy.

Every error the gateway raises on purpose is a `GatewayError`; the HTTP layer maps
`status` and `code` to the response, and `message` is safe to show to the caller
(it never carries secrets or request headers).
"""

from typing import ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # The provider attempts made before the error, for its answer (see pipeline.py).
        self.attempts: list[dict[str, object]] | None = None


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"


class UnsupportedSetting(GatewayError):
    status = 422
    code = "unsupported_setting"


class AuthError(GatewayError):
    status = 401
    code = "unauthorized"


class ForbiddenError(GatewayError):
    status = 403
    code = "forbidden"


class NotFoundError(GatewayError):
    status = 404
    code = "not_found"


class BudgetExceeded(GatewayError):
    """A hard budget cannot hold the call's worst-case cost; nothing was sent."""

    status = 402
    code = "budget_exceeded"


class ProviderError(GatewayError):
    """The upstream LLM provider failed or answered with something unusable. `retryable`: the
    same request may succeed later (a connection error, 408, 5xx, overload); not so for a request
    the provider refused as such, or a key it rejected. `upstream_status`: the provider's HTTP
    status, when it answered."""

    status = 502
    code = "provider_error"

    def __init__(self, message: str, *, retryable: bool = False, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.upstream_status = upstream_status

    @property
    def request_refused(self) -> bool:
        """The provider refused the request itself (400, 422): another target would refuse it too."""
        return self.upstream_status in (400, 422)


# The two below subclass ProviderError so callers can catch every upstream failure
# at once (e.g. to try another provider) while still exposing their own status.
class ProviderRateLimited(ProviderError):
    status = 429
    code = "provider_rate_limited"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ProviderUnavailable(ProviderError):
    """The provider's circuit breaker is open: the call was skipped, nothing was sent."""

    status = 503
    code = "provider_unavailable"


class ProviderBlocked(GatewayError):
    """The SSRF guard refused a custom provider's endpoint: nothing was sent."""

    status = 422
    code = "provider_blocked"


class DatabaseUnavailable(GatewayError):
    status = 503
    code = "database_unavailable"


class ConfigError(GatewayError):
    status = 503
    code = "llm_not_configured"
