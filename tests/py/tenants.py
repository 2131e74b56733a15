"""Two organizations with an owner, an admin and a member each, a stranger, and processors:
the identities every isolation test needs. Ids are random per test database."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from tests.py.supabase_db import Database, user_claims

ORG_CONFIG = {
    "default_profile": "balanced",
    "profiles": {
        "balanced": {"provider": "openai", "model": "gpt-4o", "settings": {"temperature": 0.3}},
        "fast": {"provider": "anthropic", "model": "claude-haiku-4-5"},
    },
}


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    owner: uuid.UUID
    admin: uuid.UUID
    member: uuid.UUID
    processor: uuid.UUID


@dataclass(frozen=True)
class Tenants:
    acme: Org
    bystander: Org
    # Signed in, token names acme, but not a member of it.
    stranger: uuid.UUID

    def claims(self, user_id: uuid.UUID, organization: Org | None = None) -> dict[str, Any]:
        org = organization or (self.bystander if user_id in _users(self.bystander) else self.acme)
        return user_claims(user_id, org.id)


def _users(org: Org) -> set[uuid.UUID]:
    return {org.owner, org.admin, org.member}


def _create_user(db: Database, email: str, organization_id: uuid.UUID) -> uuid.UUID:
    row = db.run(
        "insert into auth.users (email, raw_app_meta_data) values (%s, %s) returning id",
        (email, json.dumps({"organization_id": str(organization_id)})),
    )
    return uuid.UUID(str(row[0]["id"]))


def _create_org(db: Database, name: str) -> Org:
    org_id = uuid.UUID(
        str(
            db.run(
                "insert into organizations (name, llm_configuration) values (%s, %s) returning id",
                (name, json.dumps(ORG_CONFIG)),
            )[0]["id"]
        )
    )
    users = {}
    for role in ("owner", "admin", "member"):
        users[role] = _create_user(db, f"{role}@{name}.test", org_id)
        db.run(
            "insert into organization_members (organization_id, user_id, role) values (%s, %s, %s)",
            (org_id, users[role], role),
        )
    processor = uuid.UUID(
        str(
            db.run(
                "insert into processors (organization_id, name, configuration) values (%s, %s, %s) returning id",
                (org_id, f"{name} processor", json.dumps({"llm_profile": "fast"})),
            )[0]["id"]
        )
    )
    return Org(org_id, users["owner"], users["admin"], users["member"], processor)


def create_tenants(db: Database) -> Tenants:
    acme = _create_org(db, "acme")
    bystander = _create_org(db, "bystander")
    stranger = _create_user(db, "stranger@elsewhere.test", acme.id)
    return Tenants(acme, bystander, stranger)
