"""Two owners who remove or demote each other at the same moment: one of them stays owner.

Each acts in its own session as PostgREST would (role + claims, one transaction); the second
waits for the first at the organization's row lock, then sees that it would leave no owner.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest

from tests.py.supabase_db import Database, user_claims
from tests.py.tenants import Tenants

CHANGES = {
    "remove": "delete from public.organization_members where user_id = %s",
    "demote": "update public.organization_members set role = 'member' where user_id = %s",
}


def begin_as(db: Database, user_id: uuid.UUID, organization_id: uuid.UUID) -> psycopg.Connection[dict[str, object]]:
    conn = db.connect()
    conn.autocommit = False
    conn.execute("set local role authenticated")
    claims = {"role": "authenticated", **user_claims(user_id, organization_id)}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
    return conn


def wait_until_blocked(db: Database, conn: psycopg.Connection[dict[str, object]]) -> None:
    pid = conn.info.backend_pid
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = db.run("select wait_event_type from pg_stat_activity where pid = %s", (pid,))
        if rows and rows[0]["wait_event_type"] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError("the second change never waited for the first")


@pytest.mark.parametrize("change", CHANGES)
def test_two_owners_changing_each_other_at_once_leave_one_owner(db: Database, tenants: Tenants, change: str) -> None:
    org = tenants.acme
    db.run("update organization_members set role = 'owner' where user_id = %s", (org.admin,))
    first, second = begin_as(db, org.owner, org.id), begin_as(db, org.admin, org.id)
    outcome: list[BaseException | None] = []

    def second_changes_the_first() -> None:
        try:
            second.execute(CHANGES[change], (org.owner,))
            second.commit()
            outcome.append(None)
        except psycopg.Error as exc:
            second.rollback()
            outcome.append(exc)

    try:
        first.execute(CHANGES[change], (org.admin,))
        racer = threading.Thread(target=second_changes_the_first)
        racer.start()
        wait_until_blocked(db, second)
        first.commit()
        racer.join(timeout=10)
    finally:
        first.close()
        second.close()

    [error] = outcome
    assert isinstance(error, psycopg.Error) and error.sqlstate == "PT409"
    owners = db.run("select user_id from organization_members where organization_id = %s and role = 'owner'", (org.id,))
    assert owners == [{"user_id": org.owner}]
