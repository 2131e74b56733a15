"""HTTP routes: the plan's three edge functions, plus liveness and readiness."""

from http import HTTPStatus
from typing import TypeAlias, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import SkipValidation

T = TypeVar("T")

# A resource create_app injects by parameter name. Litestar would otherwise validate it on every
# request like client input, which fails for protocols (DataAccess) and costs time for the rest.
Injected: TypeAlias = NamedDependency[SkipValidation[T]]


class ErrorDetail(msgspec.Struct):
    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """Every error the gateway answers, whatever its status."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer (400 comes with every JSON body)."""
    return {
        status: ResponseSpec(ErrorBody, generate_examples=False, description=HTTPStatus(status).phrase)
        for status in statuses
    }
