"""Organization keys are encrypted at rest: not in the table, not in a dump, bound to their row."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.py.supabase_db import Database
from tests.py.tenants import Tenants

SERVICE = {"role": "service_role"}
KEY = "sk-test-at-rest-0123456789abcdefWXYZ"


def store(db: Database, tenants: Tenants, key: str = KEY, provider: str = "openai") -> str:
    rows = db.call(
        "service_role", SERVICE, "select store_org_api_key(%s, %s, %s) as id", (tenants.acme.id, provider, key)
    )
    return str(rows[0]["id"])


def test_stored_key_is_not_in_the_secrets_table(db: Database, tenants: Tenants) -> None:
    secret_id = store(db, tenants)
    row = db.run("select secret, nonce from vault.secrets where id = %s", (secret_id,))[0]
    assert KEY not in row["secret"]
    assert KEY[-12:] not in row["secret"]


def test_stored_key_is_not_in_a_database_dump(db: Database, tenants: Tenants) -> None:
    store(db, tenants)
    dump = subprocess.run(
        ["pg_dump", "-h", db.host, "-p", str(db.port), "-U", db.superuser, "-d", db.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "vault.secrets" in dump or "secrets" in dump
    assert KEY not in dump


def test_service_role_reads_the_key_back_through_decrypted_secrets(db: Database, tenants: Tenants) -> None:
    secret_id = store(db, tenants)
    rows = db.call(
        "service_role", SERVICE, "select decrypted_secret from vault.decrypted_secrets where id = %s", (secret_id,)
    )
    assert rows == [{"decrypted_secret": KEY}]


def test_rotation_keeps_one_secret_and_changes_the_ciphertext(db: Database, tenants: Tenants) -> None:
    first_id = store(db, tenants)
    before = db.run("select secret from vault.secrets where id = %s", (first_id,))[0]["secret"]
    second_id = store(db, tenants, key="sk-test-rotated-9876543210zyxwvuTSRQ")
    after = db.run("select secret from vault.secrets where id = %s", (first_id,))[0]["secret"]
    assert second_id == first_id
    assert after != before
    assert (
        db.run("select count(*) as n from vault.secrets where name like %s", (f"org_{tenants.acme.id}_%",))[0]["n"] == 1
    )
    got = db.call("service_role", SERVICE, "select get_org_api_key(%s, 'openai') as key", (tenants.acme.id,))
    assert got == [{"key": "sk-test-rotated-9876543210zyxwvuTSRQ"}]


def test_ciphertext_copied_to_another_row_does_not_decrypt(db: Database, tenants: Tenants) -> None:
    openai_id = store(db, tenants)
    mistral_id = store(db, tenants, key="mistral-test-key-abcdefghijklmnop", provider="mistral")
    # Only the superuser (Supabase's own admin) may write vault.secrets directly.
    with psycopg.connect(db.dsn(db.superuser), autocommit=True) as admin:
        admin.execute(
            "update vault.secrets set secret = (select secret from vault.secrets where id = %s),"
            " nonce = (select nonce from vault.secrets where id = %s) where id = %s",
            (openai_id, openai_id, mistral_id),
        )
    with pytest.raises(psycopg.errors.ExternalRoutineInvocationException):
        db.call(
            "service_role", SERVICE, "select decrypted_secret from vault.decrypted_secrets where id = %s", (mistral_id,)
        )


@pytest.mark.parametrize("role", ["postgres", "service_role"])
def test_vault_secrets_cannot_be_written_directly(db: Database, role: str) -> None:
    # As on Supabase: a plain INSERT would bypass encryption, so nobody but the superuser may.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.call(role, {"role": role}, "insert into vault.secrets (name, secret) values ('x', 'plaintext')")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_reach_vault(db: Database, role: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.call(role, {"role": role}, "select * from vault.decrypted_secrets")


def test_malformed_key_error_never_repeats_the_key(db: Database, tenants: Tenants) -> None:
    bad_key = "sk-test with spaces-0123456789"
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        store(db, tenants, key=bad_key)
    diag = caught.value.diag
    assert bad_key not in str(caught.value)
    assert bad_key not in f"{diag.message_primary} {diag.message_detail} {diag.message_hint} {diag.context}"
