"""The DataAccess contract, run against both adapters on a fresh real database each test:
PostgresDataAccess straight at it, PostgrestDataAccess through the fake PostgREST in front of it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest

from devstack.postgres import free_port
from gateway.data.postgres import PostgresDataAccess
from gateway.data.postgrest import PostgrestDataAccess
from gateway.data.types import BudgetReservation, Caller, DataAccess, UsageRecord
from gateway.errors import (
    BadRequest,
    BudgetExceeded,
    DatabaseUnavailable,
    ForbiddenError,
    GatewayError,
    NotFoundError,
)
from tests.fakes.postgrest import FakePostgrest, status_for
from tests.py.supabase_db import Database, user_claims
from tests.py.tenants import Org, Tenants

JWT_SECRET = "test-only-jwt-secret-with-at-least-32-characters"
ORG_KEY = "sk-test-org-key-0123456789-WXYZ"


def sign(claims: dict[str, Any]) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 3600, **claims}, JWT_SECRET, algorithm="HS256")


SERVICE_ROLE_KEY = sign({"role": "service_role", "iss": "supabase"})
SERVICE = Caller(role="service_role", claims={"role": "service_role"}, token=SERVICE_ROLE_KEY)


def user(user_id: uuid.UUID, org: Org | None, **extra: Any) -> Caller:
    """A signed-in user whose token names `org` (or no organization) in app_metadata."""
    claims = {**user_claims(user_id, None if org is None else org.id), "role": "authenticated", **extra}
    return Caller(role="authenticated", claims=claims, token=sign(claims))


@dataclass
class Backend:
    data: DataAccess
    # Returns an adapter of the same kind whose database cannot be reached.
    unreachable: Callable[[], Awaitable[DataAccess]]


@pytest.fixture(params=["postgres", "postgrest"])
async def backend(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[Backend]:
    opened: list[DataAccess] = []
    if request.param == "postgres":

        async def closed_port() -> DataAccess:
            dsn = db.dsn().replace(f"port={db.port}", f"port={free_port()}")
            opened.append(await PostgresDataAccess.connect(dsn, pool_timeout=0.5))
            return opened[-1]

        data = await PostgresDataAccess.connect(db.dsn(), max_size=2)
        opened.append(data)
        yield Backend(data, closed_port)
    else:
        fake = FakePostgrest(db.dsn(), JWT_SECRET).start()
        rest = await PostgrestDataAccess.connect(fake.url, SERVICE_ROLE_KEY, http_timeout=httpx.Timeout(5.0))
        opened.append(rest)

        async def stopped() -> DataAccess:
            fake.close()
            return rest

        yield Backend(rest, stopped)
        fake.close()
    for access in opened:
        await access.close()


# Effective configuration ------------------------------------------------------------------------


async def test_member_gets_their_organizations_default_profile(backend: Backend, tenants: Tenants) -> None:
    config = await backend.data.effective_config(user(tenants.acme.member, tenants.acme), tenants.acme.id, None)
    assert (config.provider, config.model, config.source, config.profile) == (
        "openai",
        "gpt-4o",
        "organization",
        "balanced",
    )
    assert config.settings["temperature"] == 0.3  # the org profile over the catalog default
    assert config.api_key_source == "system"


async def test_admin_gets_the_processors_profile(backend: Backend, tenants: Tenants) -> None:
    config = await backend.data.effective_config(
        user(tenants.acme.admin, tenants.acme), tenants.acme.id, tenants.acme.processor
    )
    assert (config.provider, config.model, config.source, config.profile) == (
        "anthropic",
        "claude-haiku-4-5",
        "processor",
        "fast",
    )
    assert config.display_name == "Claude Haiku 4.5"


async def test_service_role_resolves_for_an_explicit_organization(backend: Backend, tenants: Tenants) -> None:
    config = await backend.data.effective_config(SERVICE, tenants.bystander.id, tenants.bystander.processor)
    assert (config.provider, config.source) == ("anthropic", "processor")


async def test_service_role_gets_404_for_an_unknown_organization(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        await backend.data.effective_config(SERVICE, uuid.uuid4(), None)


async def test_removed_member_is_forbidden(backend: Backend, tenants: Tenants, db: Database) -> None:
    caller = user(tenants.acme.member, tenants.acme)
    db.run("delete from organization_members where user_id = %s", (tenants.acme.member,))
    with pytest.raises(ForbiddenError):
        await backend.data.effective_config(caller, tenants.acme.id, None)


async def test_token_without_organization_claim_is_forbidden(backend: Backend, tenants: Tenants) -> None:
    with pytest.raises(ForbiddenError):
        await backend.data.effective_config(user(tenants.acme.member, None), tenants.acme.id, None)


async def test_organization_in_user_metadata_only_is_forbidden(backend: Backend, tenants: Tenants) -> None:
    caller = user(tenants.acme.member, None, user_metadata={"organization_id": str(tenants.acme.id)})
    with pytest.raises(ForbiddenError):
        await backend.data.effective_config(caller, tenants.acme.id, None)


async def test_member_gets_404_for_another_organizations_processor(backend: Backend, tenants: Tenants) -> None:
    with pytest.raises(NotFoundError):
        await backend.data.effective_config(
            user(tenants.acme.member, tenants.acme), tenants.acme.id, tenants.bystander.processor
        )


# Organization API keys --------------------------------------------------------------------------


async def test_org_key_round_trip(backend: Backend, tenants: Tenants) -> None:
    admin = user(tenants.acme.admin, tenants.acme)
    await backend.data.store_key(admin, tenants.acme.id, "openai", ORG_KEY)

    [info] = await backend.data.list_keys(admin, tenants.acme.id)
    assert (info.provider, info.key_hint) == ("openai", "WXYZ")
    assert info.updated_at.tzinfo is not None
    assert await backend.data.org_api_key(tenants.acme.id, "openai") == ORG_KEY
    config = await backend.data.effective_config(user(tenants.acme.member, tenants.acme), tenants.acme.id, None)
    assert config.api_key_source == "organization"
    assert await backend.data.list_keys(user(tenants.bystander.admin, tenants.bystander), tenants.bystander.id) == []

    assert await backend.data.delete_key(admin, tenants.acme.id, "openai") is True
    assert await backend.data.delete_key(admin, tenants.acme.id, "openai") is False
    assert await backend.data.org_api_key(tenants.acme.id, "openai") is None


async def test_config_with_key_returns_the_org_key_only_when_it_is_the_one_to_use(
    backend: Backend, tenants: Tenants
) -> None:
    member = user(tenants.acme.member, tenants.acme)
    # The tenants' default profile is openai; the processor's "fast" profile is anthropic.
    await backend.data.store_key(user(tenants.acme.admin, tenants.acme), tenants.acme.id, "openai", ORG_KEY)

    call = await backend.data.resolve_call(member, tenants.acme.id, None, None)
    assert (call.config.provider, call.config.api_key_source, call.org_api_keys) == (
        "openai",
        "organization",
        {"openai": ORG_KEY},
    )
    call = await backend.data.resolve_call(member, tenants.acme.id, tenants.acme.processor, None)
    assert (call.config.provider, call.config.api_key_source, call.org_api_keys) == ("anthropic", "system", {})


async def test_resolving_a_call_reads_the_org_key_of_every_fallback_provider_that_uses_one(
    backend: Backend, tenants: Tenants, db: Database
) -> None:
    db.run(
        "update organizations set llm_configuration = %s where id = %s",
        (
            json.dumps(
                {
                    "default_profile": "main",
                    "profiles": {
                        "main": {
                            "provider": "openai",
                            "model": "gpt-4o",
                            "fallbacks": ["backup", {"provider": "google", "model": "gemini-2.5-flash"}],
                        },
                        "backup": {"provider": "mistral", "model": "mistral-small-latest"},
                    },
                }
            ),
            tenants.acme.id,
        ),
    )
    await backend.data.store_key(SERVICE, tenants.acme.id, "mistral", ORG_KEY)

    call = await backend.data.resolve_call(user(tenants.acme.member, tenants.acme), tenants.acme.id, None, None)

    assert [(t.provider, t.profile, t.api_key_source) for t in call.config.fallbacks] == [
        ("mistral", "backup", "organization"),
        ("google", None, "system"),
    ]
    assert (call.config.api_key_source, call.org_api_keys) == ("system", {"mistral": ORG_KEY})


async def test_config_with_key_as_service_role_for_an_explicit_org(backend: Backend, tenants: Tenants) -> None:
    await backend.data.store_key(SERVICE, tenants.acme.id, "openai", ORG_KEY)
    call = await backend.data.resolve_call(SERVICE, tenants.acme.id, None, None)
    assert (call.config.api_key_source, call.org_api_keys) == ("organization", {"openai": ORG_KEY})


async def test_config_with_key_refuses_a_removed_member(backend: Backend, tenants: Tenants, db: Database) -> None:
    db.run("delete from organization_members where user_id = %s", (tenants.acme.member,))
    with pytest.raises(ForbiddenError):
        await backend.data.resolve_call(user(tenants.acme.member, tenants.acme), tenants.acme.id, None, None)


def create_run(db: Database, organization_id: uuid.UUID) -> uuid.UUID:
    [row] = db.run("insert into runs (organization_id) values (%s) returning id", (organization_id,))
    return uuid.UUID(str(row["id"]))


@pytest.mark.parametrize("caller", ["member", "service_role"])
async def test_config_with_key_accepts_a_run_of_the_organization(
    backend: Backend, tenants: Tenants, db: Database, caller: str
) -> None:
    who = SERVICE if caller == "service_role" else user(tenants.acme.member, tenants.acme)
    call = await backend.data.resolve_call(who, tenants.acme.id, None, create_run(db, tenants.acme.id))
    assert call.config.provider == "openai"


@pytest.mark.parametrize("caller", ["member", "service_role"])
@pytest.mark.parametrize("run", ["another organization's", "unknown"])
async def test_config_with_key_refuses_a_run_that_is_not_the_organizations(
    backend: Backend, tenants: Tenants, db: Database, caller: str, run: str
) -> None:
    who = SERVICE if caller == "service_role" else user(tenants.acme.member, tenants.acme)
    run_id = create_run(db, tenants.bystander.id) if run != "unknown" else uuid.uuid4()
    with pytest.raises(NotFoundError, match="run not found"):
        await backend.data.resolve_call(who, tenants.acme.id, None, run_id)


@pytest.mark.parametrize("scope", ["organization", "processor", "soft", "none"])
async def test_resolve_call_says_whether_a_hard_budget_applies(
    backend: Backend, tenants: Tenants, db: Database, scope: str
) -> None:
    if scope != "none":
        processor = tenants.acme.processor if scope == "processor" else None
        db.run(
            "insert into llm_budgets (organization_id, processor_id, period, limit_usd, hard)"
            " values (%s, %s, 'day', 1, %s)",
            (tenants.acme.id, processor, scope != "soft"),
        )
    member = user(tenants.acme.member, tenants.acme)
    for_processor = await backend.data.resolve_call(member, tenants.acme.id, tenants.acme.processor, None)
    for_organization = await backend.data.resolve_call(member, tenants.acme.id, None, None)
    assert (for_processor.hard_budget, for_organization.hard_budget) == {
        "organization": (True, True),
        "processor": (True, False),
        "soft": (False, False),
        "none": (False, False),
    }[scope]


async def test_reserving_against_a_hard_budget_and_the_refusal(
    backend: Backend, tenants: Tenants, db: Database
) -> None:
    db.run(
        "insert into llm_budgets (organization_id, period, limit_usd, hard) values (%s, 'month', 0.01, true)",
        (tenants.acme.id,),
    )
    # gpt-4o-mini: $0.15 in, $0.60 out per million: 10,000 + 10,000 tokens is $0.0075.
    call = BudgetReservation(tenants.acme.id, None, "openai", "gpt-4o-mini", 10_000, 10_000, 60)
    assert isinstance(await backend.data.reserve_budget(call), uuid.UUID)
    with pytest.raises(BudgetExceeded, match=r"has 0\.0025 USD left"):
        await backend.data.reserve_budget(call)
    assert await backend.data.reserve_budget(dataclasses.replace(call, organization_id=tenants.bystander.id)) is None


async def test_member_cannot_store_a_key(backend: Backend, tenants: Tenants) -> None:
    with pytest.raises(ForbiddenError) as caught:
        await backend.data.store_key(user(tenants.acme.member, tenants.acme), tenants.acme.id, "openai", ORG_KEY)
    assert ORG_KEY not in _everything_about(caught.value)
    assert await backend.data.org_api_key(tenants.acme.id, "openai") is None


async def test_admin_of_another_org_cannot_list_keys(backend: Backend, tenants: Tenants) -> None:
    with pytest.raises(ForbiddenError):
        await backend.data.list_keys(user(tenants.bystander.admin, tenants.bystander), tenants.acme.id)


async def test_unknown_provider_is_a_bad_request(backend: Backend, tenants: Tenants) -> None:
    admin = user(tenants.acme.admin, tenants.acme)
    with pytest.raises(BadRequest) as caught:
        await backend.data.store_key(admin, tenants.acme.id, "acme-llm", ORG_KEY)
    assert "unknown provider" in caught.value.message
    with pytest.raises(BadRequest):
        await backend.data.org_api_key(tenants.acme.id, "acme-llm")


async def test_rejected_key_never_appears_in_the_error(backend: Backend, tenants: Tenants) -> None:
    malformed = "sk-has spaces-SECRET-9f8e7d"
    with pytest.raises(BadRequest) as caught:
        await backend.data.store_key(user(tenants.acme.admin, tenants.acme), tenants.acme.id, "openai", malformed)
    assert "SECRET-9f8e7d" not in _everything_about(caught.value)


def _everything_about(error: BaseException) -> str:
    """The error as a log line with its traceback and chained causes would show it."""
    return "".join(traceback.format_exception(error)) + repr(error.__dict__)


# Usage ------------------------------------------------------------------------------------------


async def test_record_usage_returns_the_catalog_cost_and_commits(
    backend: Backend, tenants: Tenants, db: Database
) -> None:
    run_id = uuid.uuid4()
    cost = await backend.data.record_usage(
        UsageRecord(
            organization_id=tenants.acme.id,
            provider="openai",
            model_name="gpt-4o",
            user_id=tenants.acme.member,
            processor_id=tenants.acme.processor,
            operation_id=str(run_id),
            input_tokens=1000,
            output_tokens=500,
            response_time_ms=42,
        )
    )
    # gpt-4o: $2.50 input, $10 output per million tokens.
    assert cost == pytest.approx(0.0075)
    with db.connect() as fresh:
        [row] = fresh.execute(
            "select estimated_cost, user_id, response_time_ms from llm_usage_logs where operation_id = %s",
            (str(run_id),),
        ).fetchall()
    assert row == {"estimated_cost": Decimal("0.007500"), "user_id": tenants.acme.member, "response_time_ms": 42}


async def test_failed_call_without_tokens_has_no_cost(backend: Backend, tenants: Tenants) -> None:
    cost = await backend.data.record_usage(
        UsageRecord(
            organization_id=tenants.acme.id,
            provider="anthropic",
            model_name="claude-haiku-4-5",
            error_message="provider timed out",
        )
    )
    assert cost is None


async def test_concurrent_usage_rows_each_get_their_own_cost_and_are_committed_once(
    backend: Backend, tenants: Tenants, db: Database
) -> None:
    operation = str(uuid.uuid4())
    # gpt-4o-mini: $0.15 input, $0.60 output per million tokens; each call a different size.
    rows = [
        UsageRecord(
            tenants.acme.id, "openai", "gpt-4o-mini", operation_id=operation, input_tokens=n * 1000, output_tokens=n
        )
        for n in range(1, 13)
    ]
    costs = await asyncio.gather(*(backend.data.record_usage(row) for row in rows))
    assert costs == [pytest.approx((n * 1000 * 0.15 + n * 0.60) / 1e6, abs=1e-6) for n in range(1, 13)]
    with db.connect() as fresh:
        stored = fresh.execute(
            "select input_tokens, estimated_cost from llm_usage_logs where operation_id = %s order by input_tokens",
            (operation,),
        ).fetchall()
    assert [(r["input_tokens"], float(r["estimated_cost"])) for r in stored] == [
        (row.input_tokens, pytest.approx(cost)) for row, cost in zip(rows, costs, strict=True)
    ]


async def test_a_refused_usage_row_fails_only_its_own_caller(backend: Backend, tenants: Tenants, db: Database) -> None:
    operation = str(uuid.uuid4())
    good = UsageRecord(tenants.acme.id, "openai", "gpt-4o", operation_id=operation, input_tokens=10, output_tokens=1)
    refused = UsageRecord(tenants.acme.id, "openai", "gpt-4o", operation_id=operation, run_id=uuid.uuid4())
    outcomes = await asyncio.gather(
        *(backend.data.record_usage(row) for row in (good, refused, good, good)), return_exceptions=True
    )
    assert isinstance(outcomes[1], GatewayError), outcomes
    assert all(isinstance(cost, float) for i, cost in enumerate(outcomes) if i != 1), outcomes
    with db.connect() as fresh:
        [count] = fresh.execute(
            "select count(*) as n from llm_usage_logs where operation_id = %s", (operation,)
        ).fetchall()
    assert count == {"n": 3}


# Availability -----------------------------------------------------------------------------------


async def test_ping_answers_when_the_database_is_up(backend: Backend) -> None:
    await backend.data.ping()


async def test_unreachable_database_is_unavailable(backend: Backend, tenants: Tenants) -> None:
    down = await backend.unreachable()
    with pytest.raises(DatabaseUnavailable):
        await down.ping()
    with pytest.raises(DatabaseUnavailable):
        await down.effective_config(user(tenants.acme.member, tenants.acme), tenants.acme.id, None)
    with pytest.raises(DatabaseUnavailable):
        await down.record_usage(UsageRecord(organization_id=tenants.acme.id, provider="openai", model_name="gpt-4o"))


# Adapter specifics ------------------------------------------------------------------------------


async def test_postgres_adapter_prepares_nothing_and_leaves_no_session_state(db: Database, tenants: Tenants) -> None:
    data = await PostgresDataAccess.connect(db.dsn(), min_size=1, max_size=1)
    try:
        member, admin = user(tenants.acme.member, tenants.acme), user(tenants.acme.admin, tenants.acme)
        # More calls than psycopg's default prepare_threshold (5) would need to start preparing.
        for _ in range(8):
            await data.effective_config(member, tenants.acme.id, tenants.acme.processor)
            await data.org_api_key(tenants.acme.id, "openai")
            await data.list_keys(admin, tenants.acme.id)
        await data.store_key(admin, tenants.acme.id, "openai", ORG_KEY)
        async with data.pool.connection() as conn:  # the one connection every call above used
            assert conn.prepare_threshold is None
            cur = await conn.execute(
                "select (select count(*) from pg_prepared_statements), current_user,"
                " current_setting('request.jwt.claims', true), current_setting('statement_timeout')"
            )
            assert await cur.fetchone() == (0, "postgres", "", "0")
    finally:
        await data.close()


async def test_postgres_adapter_commits_concurrent_usage_rows_in_one_transaction(
    db: Database, tenants: Tenants
) -> None:
    data = await PostgresDataAccess.connect(db.dsn(), max_size=4)
    try:
        operation = str(uuid.uuid4())
        row = UsageRecord(tenants.acme.id, "openai", "gpt-4o", operation_id=operation, input_tokens=10)
        await asyncio.gather(*(data.record_usage(row) for _ in range(10)))
    finally:
        await data.close()
    with db.connect() as fresh:
        # now() is the transaction's start: one value for all ten rows means one insert, one commit.
        [stored] = fresh.execute(
            "select count(*) as n, count(distinct created_at) as transactions from llm_usage_logs"
            " where operation_id = %s",
            (operation,),
        ).fetchall()
    assert stored == {"n": 10, "transactions": 1}


async def test_postgres_adapter_close_waits_for_usage_rows_in_flight(db: Database, tenants: Tenants) -> None:
    data = await PostgresDataAccess.connect(db.dsn(), max_size=1)
    operation = str(uuid.uuid4())
    row = UsageRecord(tenants.acme.id, "openai", "gpt-4o", operation_id=operation, input_tokens=10)
    writes = [asyncio.ensure_future(data.record_usage(row)) for _ in range(5)]
    await asyncio.sleep(0)  # submitted, not yet written
    await data.close()
    assert all(write.done() and write.exception() is None for write in writes)
    with db.connect() as fresh:
        [stored] = fresh.execute(
            "select count(*) as n from llm_usage_logs where operation_id = %s", (operation,)
        ).fetchall()
    assert stored == {"n": 5}


async def test_postgrest_adapter_sends_the_users_token_and_the_project_key(db: Database, tenants: Tenants) -> None:
    member = user(tenants.acme.member, tenants.acme)
    async with FakePostgrest(db.dsn(), JWT_SECRET) as fake:
        data = await PostgrestDataAccess.connect(fake.url, SERVICE_ROLE_KEY)
        try:
            await data.effective_config(member, tenants.acme.id, None)
            await data.org_api_key(tenants.acme.id, "openai")
        finally:
            await data.close()
    as_member, as_service = fake.requests
    assert as_member.path == "/rest/v1/rpc/get_effective_llm_config"
    assert as_member.headers["authorization"] == f"Bearer {member.token}"
    assert as_member.headers["apikey"] == SERVICE_ROLE_KEY
    assert as_service.headers["authorization"] == f"Bearer {SERVICE_ROLE_KEY}"


# The fake PostgREST itself ----------------------------------------------------------------------


async def test_fake_postgrest_speaks_postgrests_rpc_protocol(db: Database, tenants: Tenants) -> None:
    member = user(tenants.acme.member, tenants.acme)
    wrong_key = jwt.encode({"role": "service_role"}, "another-secret-of-at-least-32-characters", algorithm="HS256")
    async with FakePostgrest(db.dsn(), JWT_SECRET) as fake, httpx.AsyncClient(base_url=fake.url) as http:
        key = {"apikey": SERVICE_ROLE_KEY}

        async def rpc(fn: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
            auth = {} if token is None else {"Authorization": f"Bearer {token}"}
            return await http.post(f"/rest/v1/rpc/{fn}", json=body, headers={**key, **auth})

        ok = await rpc("get_effective_llm_config", {}, member.token)
        assert ok.status_code == 200 and ok.json()["source"] == "organization"
        rows = await rpc("list_org_api_keys", {"p_organization_id": str(tenants.acme.id)}, SERVICE_ROLE_KEY)
        assert rows.status_code == 200 and rows.json() == []
        anon = await rpc("get_effective_llm_config", {})
        assert anon.status_code == 401 and anon.json()["code"] == "42501"
        denied = await rpc(
            "get_org_api_key", {"p_organization_id": str(tenants.acme.id), "p_provider": "openai"}, member.token
        )
        assert denied.status_code == 403 and denied.json()["code"] == "42501"
        unknown = await rpc("get_effective_llm_config", {"p_nope": 1}, member.token)
        assert unknown.status_code == 404 and unknown.json()["code"] == "PGRST202"
        bad_uuid = await rpc("get_effective_llm_config", {"p_processor_id": "nope"}, member.token)
        assert bad_uuid.status_code == 400 and bad_uuid.json()["code"] == "22P02"
        # Not found is raised as PT404, which PostgREST answers with that status.
        missing = await rpc("get_effective_llm_config", {"p_processor_id": str(uuid.uuid4())}, member.token)
        assert missing.status_code == 404 and missing.json()["code"] == "PT404"
        db.run("update llm_global_settings set is_default = false")
        plain = db.run("insert into organizations (name) values ('plain') returning id")[0]["id"]
        no_default = await rpc("get_effective_llm_config_for_org", {"p_organization_id": str(plain)}, SERVICE_ROLE_KEY)
        assert no_default.status_code == 503 and no_default.json()["code"] == "PT503"
        forged = await rpc("get_effective_llm_config", {}, wrong_key)
        assert forged.status_code == 401 and forged.json()["code"] == "PGRST301"
        no_key = await http.post("/rest/v1/rpc/get_effective_llm_config", json={})
        assert no_key.status_code == 401


# One code per row of the status table in PostgREST's docs/references/errors.rst, "other" last.
POSTGREST_STATUS_TABLE = [
    ("08006", 503), ("09000", 500), ("0L000", 403), ("0P000", 403), ("23503", 409), ("23505", 409),
    ("25006", 405), ("25001", 500), ("28000", 403), ("2D000", 500), ("38000", 500), ("39000", 500),
    ("3B000", 500), ("40001", 500), ("53400", 500), ("53100", 503), ("54001", 500), ("55000", 500),
    ("57014", 500), ("58030", 500), ("F0000", 500), ("HV000", 500), ("P0001", 400), ("P0002", 500),
    ("P0004", 500), ("XX000", 500), ("42883", 404), ("42P01", 404), ("42P17", 500),
    ("23502", 400), ("22023", 400), ("42703", 400),
]  # fmt: skip


@pytest.mark.parametrize(("sqlstate", "status"), POSTGREST_STATUS_TABLE)
def test_fake_postgrest_maps_each_documented_sqlstate_to_its_status(sqlstate: str, status: int) -> None:
    assert status_for(sqlstate, "authenticated") == status


def test_fake_postgrest_maps_privilege_errors_by_role_and_pt_codes_to_their_status() -> None:
    assert status_for("42501", "anon") == 401
    assert status_for("42501", "authenticated") == 403
    assert [status_for(code, "authenticated") for code in ("PT404", "PT409", "PT503", "PT4X4")] == [404, 409, 503, 500]


async def test_postgres_statement_timeout_is_unavailable(db: Database, tenants: Tenants) -> None:
    data = await PostgresDataAccess.connect(db.dsn(), statement_timeout_ms=300)
    blocker = db.connect()
    try:
        with blocker.transaction():
            blocker.execute("lock table public.organizations in access exclusive mode")
            with pytest.raises(DatabaseUnavailable):
                await asyncio.wait_for(
                    data.effective_config(user(tenants.acme.member, tenants.acme), tenants.acme.id, None), 5
                )
    finally:
        blocker.close()
        await data.close()


async def test_postgrest_read_timeout_is_unavailable(tenants: Tenants) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        data = await PostgrestDataAccess.connect(url, SERVICE_ROLE_KEY, http_timeout=httpx.Timeout(0.3))
        try:
            with pytest.raises(DatabaseUnavailable):
                await data.org_api_key(tenants.acme.id, "openai")
        finally:
            await data.close()
