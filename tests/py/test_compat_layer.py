"""The compatibility layer reproduces what a hosted Supabase project is like (SUPABASE.md);
without this, the privilege and RLS tests would prove nothing."""

from __future__ import annotations

import psycopg
import pytest

from tests.py.supabase_db import Database


def test_postgres_owns_the_schema_but_is_not_a_superuser(db: Database) -> None:
    row = db.run("select rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = current_user")[0]
    assert row == {"rolsuper": False, "rolbypassrls": True, "rolcreaterole": True}
    owners = db.run(
        "select distinct pg_get_userbyid(c.relowner) as owner from pg_class as c"
        " join pg_namespace as n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'"
    )
    assert owners == [{"owner": "postgres"}]


def test_api_roles_are_as_on_supabase(db: Database) -> None:
    rows = db.run(
        "select rolname, rolcanlogin, rolbypassrls, rolinherit from pg_roles"
        " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator') order by rolname"
    )
    assert rows == [
        {"rolname": "anon", "rolcanlogin": False, "rolbypassrls": False, "rolinherit": True},
        {"rolname": "authenticated", "rolcanlogin": False, "rolbypassrls": False, "rolinherit": True},
        {"rolname": "authenticator", "rolcanlogin": True, "rolbypassrls": False, "rolinherit": False},
        {"rolname": "service_role", "rolcanlogin": False, "rolbypassrls": True, "rolinherit": True},
    ]


def test_new_objects_in_public_follow_the_projects_default_privileges(db_each_mode: Database) -> None:
    db_each_mode.run("create table public.compat_probe (id int)")
    db_each_mode.run("create function public.compat_probe_fn() returns int language sql as 'select 1'")
    anon_can_write = db_each_mode.run("select has_table_privilege('anon', 'public.compat_probe', 'insert') as ok")[0][
        "ok"
    ]
    anon_can_call = db_each_mode.run(
        "select has_function_privilege('anon', 'public.compat_probe_fn()', 'execute') as ok"
    )[0]["ok"]
    public_can_call = db_each_mode.run(
        "select exists (select from aclexplode((select proacl from pg_proc where proname = 'compat_probe_fn'))"
        " where grantee = 0) or (select proacl is null from pg_proc where proname = 'compat_probe_fn') as ok"
    )[0]["ok"]
    # Older projects hand every new table and function to anon; newer ones do not, but PUBLIC
    # still gets EXECUTE on functions in both.
    assert anon_can_write is (db_each_mode.mode == "legacy")
    assert anon_can_call is True
    assert public_can_call is True


def test_auth_helpers_read_claims_as_postgrest_sets_them(db: Database) -> None:
    claims = {"sub": "8d0fd2b3-9ca6-4e0c-a3a7-bd8c1f2b6a11", "app_metadata": {"organization_id": "x"}}
    row = db.call(
        "authenticated",
        claims,
        "select auth.uid()::text as uid, auth.role() as role, auth.jwt() -> 'app_metadata' as meta",
    )[0]
    assert row == {"uid": claims["sub"], "role": "authenticated", "meta": {"organization_id": "x"}}


def test_auth_users_is_closed_to_the_api_roles(db: Database) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.call("authenticated", {}, "select * from auth.users")
