"""The database announces every change that can alter an effective configuration or the key a
call uses, on channel llm_config_changed: the organization's id, or "*" for the catalog. Changes
are made the way the app makes them (as signed-in admins through RLS, or the service role)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.py.supabase_db import Database
from tests.py.tenants import Tenants

CHANNEL = "llm_config_changed"


@pytest.fixture
def listener(db: Database) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(db.dsn(), autocommit=True)
    conn.execute(f"listen {CHANNEL}")
    yield conn
    conn.close()


def announced(listener: psycopg.Connection[Any]) -> list[str]:
    """What arrived since the last call (notifications are delivered at commit)."""
    return [n.payload for n in listener.notifies(timeout=0.3, stop_after=None)]


def admin_call(db: Database, tenants: Tenants, query: str, params: Any = None) -> None:
    user = tenants.acme.admin
    db.call("authenticated", {**tenants.claims(user), "role": "authenticated"}, query, params)


def create_run(db: Database, tenants: Tenants) -> Any:
    """A run of acme; creating it announces nothing."""
    return db.run("insert into runs (organization_id) values (%s) returning id", (tenants.acme.id,))[0]["id"]


UPDATE_CONFIGURATION = (
    "update organizations set llm_configuration = jsonb_set(llm_configuration, '{default_profile}', '\"fast\"')"
    " where id = %s"
)
ADD_MEMBER = "insert into organization_members (organization_id, user_id, role) values (%s, %s, 'member')"
CHANGES: dict[str, Callable[[Database, Tenants], Any]] = {
    "organization's llm_configuration": lambda db, t: admin_call(db, t, UPDATE_CONFIGURATION, (t.acme.id,)),
    "member added": lambda db, t: db.call("service_role", None, ADD_MEMBER, (t.acme.id, t.stranger)),
    "member removed": lambda db, t: admin_call(
        db, t, "delete from organization_members where user_id = %s", (t.acme.member,)
    ),
    "member re-roled": lambda db, t: admin_call(
        db, t, "update organization_members set role = 'admin' where user_id = %s", (t.acme.member,)
    ),
    "processor's configuration": lambda db, t: admin_call(
        db, t, "update processors set configuration = '{}' where id = %s", (t.acme.processor,)
    ),
    "processor deleted": lambda db, t: admin_call(db, t, "delete from processors where id = %s", (t.acme.processor,)),
    "key stored": lambda db, t: admin_call(
        db, t, "select public.store_org_api_key(%s, 'openai', 'sk-notify-test-0001')", (t.acme.id,)
    ),
    "run deleted": lambda db, t: db.run("delete from runs where id = %s", (create_run(db, t),)),
    "budget set": lambda db, t: admin_call(
        db, t, "insert into llm_budgets (organization_id, period, limit_usd) values (%s, 'day', 5)", (t.acme.id,)
    ),
    "custom provider added": lambda db, t: admin_call(
        db,
        t,
        "insert into llm_custom_providers (organization_id, name, base_url) values (%s, 'own', 'https://llm.example')",
        (t.acme.id,),
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_each_change_announces_its_organization_once(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any], change: str
) -> None:
    CHANGES[change](db, tenants)
    assert announced(listener) == [str(tenants.acme.id)]


def test_a_deleted_key_is_announced_and_a_missing_one_is_not(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    db.call(
        "service_role", None, "select public.store_org_api_key(%s, 'openai', 'sk-notify-test-0001')", (tenants.acme.id,)
    )
    announced(listener)
    db.call("service_role", None, "select public.delete_org_api_key(%s, 'openai')", (tenants.acme.id,))
    assert announced(listener) == [str(tenants.acme.id)]
    db.call("service_role", None, "select public.delete_org_api_key(%s, 'openai')", (tenants.acme.id,))
    assert announced(listener) == []


def test_a_catalog_change_announces_every_organization(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    db.run("update llm_global_settings set is_active = false where model_name = 'gpt-4.1'")
    assert announced(listener) == ["*"]


def test_a_processor_moved_announces_both_organizations(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    db.run("update processors set organization_id = %s where id = %s", (tenants.bystander.id, tenants.acme.processor))
    assert sorted(announced(listener)) == sorted([str(tenants.acme.id), str(tenants.bystander.id)])


def test_a_bulk_change_announces_each_organization_once(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    db.run("update processors set configuration = '{}'")  # two organizations' processors
    db.run("insert into processors (organization_id, name) select %s, 'p' || n from generate_series(1, 5) as n",
           (tenants.acme.id,))  # fmt: skip
    announced(listener)
    db.run(
        'update processors set configuration = \'{"llm_profile": "fast"}\' where organization_id = %s',
        (tenants.acme.id,),
    )
    assert announced(listener) == [str(tenants.acme.id)]


def test_what_cannot_change_a_configuration_announces_nothing(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    db.call("service_role", None,
            "insert into llm_usage_logs (organization_id, provider, model_name) values (%s, 'openai', 'gpt-4o')",
            (tenants.acme.id,))  # fmt: skip
    db.run("update organizations set name = 'Acme 2' where id = %s", (tenants.acme.id,))
    db.run("insert into processors (organization_id, name) values (%s, 'new')", (tenants.acme.id,))
    db.run("insert into runs (organization_id) values (%s)", (tenants.acme.id,))
    assert announced(listener) == []


def test_a_rolled_back_change_announces_nothing(
    db: Database, tenants: Tenants, listener: psycopg.Connection[Any]
) -> None:
    with db.connect() as conn:
        conn.autocommit = False
        conn.execute("delete from organization_members where user_id = %s", (tenants.acme.member,))
        conn.rollback()
    assert announced(listener) == []
    assert db.run("select 1 from organization_members where user_id = %s", (tenants.acme.member,))
