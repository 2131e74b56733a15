"""POST /functions/v1/manage-llm-keys and GET /functions/v1/llm-config end to end."""

from __future__ import annotations

import logging

import pytest

from tests.py.test_gateway_harness import SERVICE_ROLE_KEY, Gateway, bearer

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

KEY = "sk-acme-anthropic-0123456789-AAAA"
NEW_KEY = "sk-acme-anthropic-9876543210-BBBB"


# manage-llm-keys -----------------------------------------------------------------------------------


async def test_admin_sets_rotates_lists_and_deletes_a_key_without_ever_seeing_it(
    any_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = any_gateway
    admin = gw.token(gw.tenants.acme.admin)

    stored = await gw.manage_keys(admin, action="set", provider="anthropic", api_key=KEY)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"action": "set", "provider": "anthropic", "key_hint": "AAAA"}

    rotated = await gw.manage_keys(admin, action="rotate", provider="anthropic", api_key=NEW_KEY)
    assert rotated.json() == {"action": "rotate", "provider": "anthropic", "key_hint": "BBBB"}

    listed = await gw.manage_keys(admin, action="list")
    [key] = listed.json()["keys"]
    assert (key["provider"], key["key_hint"]) == ("anthropic", "BBBB") and key["updated_at"]

    deleted = await gw.manage_keys(admin, action="delete", provider="anthropic")
    assert deleted.json() == {"action": "delete", "provider": "anthropic"}
    assert (await gw.manage_keys(admin, action="list")).json()["keys"] == []

    for text in (stored.text, rotated.text, listed.text, deleted.text, caplog.text):
        assert KEY not in text and NEW_KEY not in text


async def test_stored_key_is_used_by_the_next_call(gateway: Gateway) -> None:
    gw = gateway
    await gw.manage_keys(gw.token(gw.tenants.acme.owner), action="set", provider="anthropic", api_key=KEY)
    response = await gw.execute(
        gw.token(gw.tenants.acme.member), processor_id=str(gw.tenants.acme.processor), prompt="x"
    )
    assert response.json()["config"]["api_key_source"] == "organization"
    assert gw.providers.requests_for("anthropic")[0].headers["x-api-key"] == KEY


@pytest.mark.parametrize("action", ["set", "list", "delete"])
async def test_member_cannot_manage_keys(any_gateway: Gateway, action: str) -> None:
    gw = any_gateway
    body = {"action": action} | ({"provider": "openai"} if action != "list" else {})
    body |= {"api_key": KEY} if action == "set" else {}
    response = await gw.manage_keys(gw.token(gw.tenants.acme.member), **body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_admin_of_another_organization_cannot_touch_this_ones_keys(gateway: Gateway) -> None:
    gw = gateway
    outsider = gw.token(gw.tenants.bystander.admin)
    response = await gw.manage_keys(
        outsider, action="set", provider="openai", api_key=KEY, organization_id=str(gw.tenants.acme.id)
    )
    assert response.status_code == 403
    assert gw.db.run("select count(*) as n from vault.secrets")[0]["n"] == 0


async def test_service_role_manages_keys_of_an_explicit_organization(gateway: Gateway) -> None:
    gw = gateway
    acme = str(gw.tenants.acme.id)
    response = await gw.manage_keys(
        SERVICE_ROLE_KEY, action="set", provider="mistral", api_key=KEY, organization_id=acme
    )
    assert response.status_code == 200
    listed = await gw.manage_keys(gw.token(gw.tenants.acme.owner), action="list")
    assert [k["provider"] for k in listed.json()["keys"]] == ["mistral"]


async def test_rotating_a_key_that_was_never_set_is_404(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.admin)
    response = await gateway.manage_keys(token, action="rotate", provider="google", api_key=KEY)
    assert response.status_code == 404


async def test_deleting_a_missing_key_is_404(gateway: Gateway) -> None:
    response = await gateway.manage_keys(gateway.token(gateway.tenants.acme.admin), action="delete", provider="meta")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"action": "set", "provider": "openai"},
        {"action": "set", "api_key": KEY},
        {"action": "set", "provider": "azure", "api_key": KEY},
        {"action": "delete", "provider": "openai", "api_key": KEY},
        {"action": "list", "api_key": KEY},
        {"action": "replace", "provider": "openai", "api_key": KEY},
        {"action": "set", "provider": "openai", "api_key": "x" * 513},
        {"action": "set", "provider": "openai", "api_key": 12345678},
    ],
    ids=[
        "no-key",
        "no-provider",
        "unknown-provider",
        "key-on-delete",
        "key-on-list",
        "unknown-action",
        "too-long",
        "not-a-string",
    ],
)
async def test_malformed_key_requests_are_400_and_never_echo_the_key(gateway: Gateway, body: dict[str, object]) -> None:
    response = await gateway.manage_keys(gateway.token(gateway.tenants.acme.admin), **body)
    assert response.status_code == 400
    assert KEY not in response.text and "x" * 20 not in response.text


async def test_key_the_database_rejects_is_400_without_echo(gateway: Gateway) -> None:
    bad = "sk has spaces in it"
    response = await gateway.manage_keys(
        gateway.token(gateway.tenants.acme.admin), action="set", provider="openai", api_key=bad
    )
    assert response.status_code == 400
    assert bad not in response.text


# llm-config ------------------------------------------------------------------------------------------


async def test_member_sees_the_effective_configuration_without_secrets(any_gateway: Gateway) -> None:
    gw = any_gateway
    await gw.manage_keys(gw.token(gw.tenants.acme.owner), action="set", provider="openai", api_key=KEY)
    response = await gw.client.get("/functions/v1/llm-config", headers=bearer(gw.token(gw.tenants.acme.member)))
    assert response.status_code == 200
    body = response.json()
    assert (body["provider"], body["model"], body["source"], body["profile"]) == (
        "openai",
        "gpt-4o",
        "organization",
        "balanced",
    )
    assert body["settings"]["temperature"] == 0.3
    assert body["api_key_source"] == "organization"
    assert KEY not in response.text and "AAAA" not in response.text


async def test_processor_configuration_is_resolved_for_the_run_page(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/functions/v1/llm-config",
        params={"processor_id": str(gateway.tenants.acme.processor)},
        headers=bearer(gateway.token(gateway.tenants.acme.member)),
    )
    body = response.json()
    assert (body["provider"], body["model"], body["source"], body["profile"]) == (
        "anthropic",
        "claude-haiku-4-5",
        "processor",
        "fast",
    )
    assert body["api_key_source"] == "system"


async def test_malformed_processor_id_is_400(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/functions/v1/llm-config",
        params={"processor_id": "not-a-uuid"},
        headers=bearer(gateway.token(gateway.tenants.acme.member)),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
