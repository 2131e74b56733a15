"""Property tests: whatever a client sends, the gateway answers with a client error or success,
never a 5xx, and every provider call it makes has its usage row.

Bodies are random JSON (any nesting, any types, any unicode including NUL and lone surrogates),
bodies shaped like each endpoint's own with random values, and raw deeply nested text; every
endpoint gets them. The provider is the fake on 127.0.0.1, so valid bodies really call it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.providers import PROVIDERS
from tests.py.test_gateway_harness import Gateway, bearer

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

ENDPOINTS = [
    ("POST", "/functions/v1/execute-llm"),
    ("POST", "/functions/v1/manage-llm-keys"),
    ("GET", "/functions/v1/llm-config"),
    ("GET", "/health"),
    ("GET", "/ready"),
]
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    # One gateway and database for all examples: each example checks counts before and after.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every code point, surrogates included (json.dumps escapes them as \\ud800 ...), NUL included.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=30,
)
maybe = lambda strategy: st.none() | strategy  # noqa: E731
uuid_text = st.uuids().map(str)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]) | any_text, "content": any_text}),
    max_size=3,
)
execute_bodies = st.fixed_dictionaries(
    {},
    optional={
        "prompt": any_text | json_scalars,
        "messages": messages,
        "system": any_text,
        "operation_id": any_text,
        "processor_id": uuid_text | any_text,
        "run_id": uuid_text,
        "organization_id": uuid_text,
    },
)
key_bodies = st.fixed_dictionaries(
    {"action": st.sampled_from(["set", "rotate", "delete", "list"]) | any_text},
    optional={"provider": st.sampled_from(PROVIDERS) | any_text, "api_key": any_text},
)
deeply_nested = st.tuples(st.integers(1, 5000), st.sampled_from(["[", '{"a":'])).map(
    lambda depth_and_opener: (
        depth_and_opener[1] * depth_and_opener[0]
        + ("1" if depth_and_opener[1] != "[" else "")
        + ("}" if depth_and_opener[1] != "[" else "]") * depth_and_opener[0]
    )
)
bodies = (
    json_values.map(json.dumps)
    | execute_bodies.map(json.dumps)
    | key_bodies.map(json.dumps)
    | deeply_nested
    | st.binary(max_size=64).map(lambda raw: raw.decode("latin-1"))
)


async def send(gateway: Gateway, method: str, path: str, body: str, query: dict[str, Any] | None = None) -> Any:
    headers = {**bearer(gateway.token(gateway.tenants.acme.admin)), "content-type": "application/json"}
    return await gateway.client.request(
        method, path, content=body.encode("utf-8", "surrogatepass"), headers=headers, params=query
    )


def assert_a_clear_answer(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]


def calls_and_rows(gateway: Gateway) -> tuple[int, int]:
    [row] = gateway.db.run("select count(*) as n from llm_usage_logs")
    return len(gateway.providers.requests), row["n"]


@EXAMPLES
@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies)
async def test_no_body_on_any_endpoint_gets_a_5xx_and_every_call_has_its_row(
    gateway: Gateway, endpoint: tuple[str, str], body: str
) -> None:
    calls_before, rows_before = calls_and_rows(gateway)
    assert_a_clear_answer(await send(gateway, *endpoint, body))
    calls_after, rows_after = calls_and_rows(gateway)
    assert calls_after - calls_before == rows_after - rows_before


@EXAMPLES
@given(query=st.dictionaries(st.sampled_from(["processor_id", "organization_id"]) | any_text, any_text, max_size=3))
async def test_no_query_string_on_llm_config_gets_a_5xx(gateway: Gateway, query: dict[str, str]) -> None:
    # Query strings travel as UTF-8; a lone surrogate cannot be in one.
    query = {k.encode("utf-8", "replace").decode(): v.encode("utf-8", "replace").decode() for k, v in query.items()}
    assert_a_clear_answer(await send(gateway, "GET", "/functions/v1/llm-config", "", query))


@EXAMPLES
@given(body=execute_bodies, processor=st.booleans())
async def test_every_execute_call_has_exactly_its_usage_row(
    gateway: Gateway, body: dict[str, Any], processor: bool
) -> None:
    """Bodies that really reach the provider (valid prompts with any text) are billed one row each."""
    body = {k: v for k, v in body.items() if k not in ("organization_id", "run_id", "processor_id")}
    if processor:
        body["processor_id"] = str(gateway.tenants.acme.processor)
    calls_before, rows_before = calls_and_rows(gateway)
    assert_a_clear_answer(await send(gateway, "POST", "/functions/v1/execute-llm", json.dumps(body)))
    calls_after, rows_after = calls_and_rows(gateway)
    assert calls_after - calls_before == rows_after - rows_before
