"""Hard budgets through the gateway: calls that would not fit are refused (402) before anything is
sent, concurrent calls never overshoot, and alerts fire once per threshold under concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devstack.postgres import free_port
from tests.fakes.providers import FakeProviders, slow
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, bearer, command, gateway_env, running_gateway, sign, wait_for

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

PROMPT = "Classify this invoice."
MAX_TOKENS = 100
# The gateway's allowance per message (gateway/budget.py), restated: the test computes the bound itself.
MESSAGE_ALLOWANCE_TOKENS = 16


def worst_case_usd(db: Database, model: str) -> Decimal:
    """One call's reservation, from the catalog: input bytes + allowance at the highest input rate,
    max_tokens at the output rate."""
    [price] = db.run("select * from llm_global_settings where provider = 'openai' and model_name = %s", (model,))
    rates = [price[f"cost_per_million_{kind}_tokens"] or 0 for kind in ("input", "cache_read", "cache_write")]
    input_tokens = len(PROMPT.encode()) + MESSAGE_ALLOWANCE_TOKENS
    return (input_tokens * max(rates) + MAX_TOKENS * price["cost_per_million_output_tokens"]) / 1_000_000


def budgeted_processor(gw: Gateway) -> str:
    return str(gw.processor_for("openai", settings={"max_tokens": MAX_TOKENS}))


def add_budget(db: Database, organization_id: Any, limit: Decimal, hard: bool = True, period: str = "day") -> None:
    db.run(
        "insert into llm_budgets (organization_id, period, limit_usd, hard) values (%s, %s, %s, %s)",
        (organization_id, period, limit, hard),
    )


def status(db: Database, organization_id: Any) -> dict[str, Any]:
    with db.connect() as conn:
        conn.execute("select set_config('role', 'service_role', false)")
        conn.execute("""select set_config('request.jwt.claims', '{"role": "service_role"}', false)""")
        [row] = conn.execute("select * from get_llm_budget_status_for_org(%s)", (organization_id,)).fetchall()
    return row


async def test_a_call_that_does_not_fit_is_402_and_nothing_is_sent(gateway: Gateway) -> None:
    gw = gateway
    processor = budgeted_processor(gw)
    add_budget(gw.db, gw.tenants.acme.id, worst_case_usd(gw.db, "gpt-4o-mini") / 2)
    response = await gw.execute(gw.token(gw.tenants.acme.member), processor_id=processor, prompt=PROMPT)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "daily budget" in error["message"] and "USD left" in error["message"]
    assert gw.providers.requests == [] and gw.usage_rows() == []


async def test_a_call_under_a_hard_budget_sends_max_tokens_and_settles_its_reservation(gateway: Gateway) -> None:
    gw = gateway
    # A catalog model whose defaults set no max_tokens, in a profile that sets none either.
    gw.db.run(
        "insert into llm_global_settings (provider, model_name, display_name, cost_per_million_input_tokens,"
        " cost_per_million_output_tokens) values ('openai', 'bound-probe', 'Bound probe', 1, 2)"
    )
    gw.db.run(
        "update organizations set llm_configuration = jsonb_set(llm_configuration, '{profiles,bare}', %s)"
        " where id = %s",
        (json.dumps({"provider": "openai", "model": "bound-probe"}), gw.tenants.acme.id),
    )
    [row] = gw.db.run(
        "insert into processors (organization_id, name, configuration) values (%s, 'bare', %s) returning id",
        (gw.tenants.acme.id, json.dumps({"llm_profile": "bare"})),
    )
    processor = str(row["id"])
    add_budget(gw.db, gw.tenants.acme.id, Decimal(1))
    response = await gw.execute(gw.token(gw.tenants.acme.member), processor_id=processor, prompt=PROMPT)
    assert response.status_code == 200, response.text
    [sent] = gw.providers.requests_for("openai")
    assert sent.json["max_completion_tokens"] == 4096  # the output's bound, sent so that it holds
    [row] = gw.usage_rows()
    budget = status(gw.db, gw.tenants.acme.id)
    assert budget["spent_usd"] == row["estimated_cost"] and budget["reserved_usd"] == 0


async def test_without_a_hard_budget_nothing_is_reserved(gateway: Gateway) -> None:
    gw = gateway
    add_budget(gw.db, gw.tenants.acme.id, Decimal("0.000001"), hard=False)
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt=PROMPT)
    assert response.status_code == 200  # a soft budget only alerts
    assert gw.usage_rows()[0]["reservation_id"] is None


def test_fifty_concurrent_calls_against_a_budget_for_ten_never_overshoot(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    gw = Gateway(None, db, tenants, providers, None)  # type: ignore[arg-type]  # its database helpers only
    processor = budgeted_processor(gw)
    worst = worst_case_usd(db, "gpt-4o-mini")
    limit = worst * 10 + worst / 2  # room for exactly 10 calls' worst cases
    add_budget(db, tenants.acme.id, limit)
    # Every call takes a second at the provider, so all 50 reserve while the first 10 are in flight.
    providers.script("openai", *[slow(1.0)] * 50)
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), **gateway_env(db, providers, GATEWAY_PORT=str(port))}
    token = sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})

    async def fifty_calls(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            body = {"processor_id": processor, "prompt": PROMPT}
            responses = await asyncio.gather(
                *(client.post("/functions/v1/execute-llm", json=body, headers=bearer(token)) for _ in range(50))
            )
        return [r.status_code for r in responses]

    with command(["-m", "gateway"], env):
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health")
        statuses = asyncio.run(fifty_calls(base))

    assert sorted(statuses) == [200] * 10 + [402] * 40
    assert len(providers.requests_for("openai")) == 10
    rows = db.run("select estimated_cost from llm_usage_logs")
    assert len(rows) == 10
    budget = status(db, tenants.acme.id)
    assert budget["spent_usd"] == sum(r["estimated_cost"] for r in rows) <= limit
    assert budget["reserved_usd"] == 0


def test_alerts_fire_once_per_threshold_when_spend_arrives_concurrently(db: Database, tenants: Tenants) -> None:
    add_budget(db, tenants.acme.id, Decimal(1), hard=False, period="month")
    start = threading.Barrier(20)

    def spend_a_tenth() -> None:
        with db.connect() as conn:
            conn.execute("set role service_role")
            start.wait()
            conn.execute(
                "insert into llm_usage_logs (organization_id, provider, model_name, estimated_cost)"
                " values (%s, 'openai', 'gpt-4o-mini', 0.1)",
                (tenants.acme.id,),
            )

    workers = [threading.Thread(target=spend_a_tenth) for _ in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    alerts = db.run("select threshold, spent_usd from llm_budget_alerts order by threshold")
    assert [a["threshold"] for a in alerts] == [Decimal("0.5"), Decimal("0.8"), Decimal("1.0")]
    # Each alert records the spend of the write that crossed it.
    assert [a["spent_usd"] for a in alerts] == [Decimal("0.5"), Decimal("0.8"), Decimal("1.0")]
    assert status(db, tenants.acme.id)["spent_usd"] == 2


@pytest.mark.parametrize("adapter", ["postgres", "postgrest"])
async def test_budget_refusal_is_the_same_on_both_data_adapters(
    db: Database, tenants: Tenants, providers: FakeProviders, adapter: str
) -> None:
    async with running_gateway(db, tenants, providers, adapter) as gw:
        processor = budgeted_processor(gw)
        add_budget(db, tenants.acme.id, worst_case_usd(db, "gpt-4o-mini") * Decimal("1.5"))
        token = gw.token(gw.tenants.acme.member)
        first = await gw.execute(token, processor_id=processor, prompt=PROMPT)
        assert first.status_code == 200, first.text
        second = await gw.execute(token, processor_id=processor, prompt=PROMPT)
        # The first settled at its actual cost, far below its worst case: the second fits too.
        assert second.status_code == 200, second.text
        db.run("update llm_budgets set limit_usd = 0.0000001")
        third = await gw.execute(token, processor_id=processor, prompt=PROMPT)
        assert third.status_code == 402 and third.json()["error"]["code"] == "budget_exceeded"
        assert len(providers.requests) == 2
