"""Act on a test database the way PostgREST does: one transaction per request, as an API role
with the JWT claims in `request.jwt.claims`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devstack.database import OWNER, conninfo


@dataclass
class Database:
    host: str
    port: int
    name: str
    superuser: str
    mode: str = "legacy"
    _owner: psycopg.Connection[dict[str, Any]] | None = field(default=None, repr=False)

    def dsn(self, user: str = OWNER) -> str:
        return conninfo(self.host, self.port, user, self.name)

    def connect(self, user: str = OWNER) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.dsn(user), row_factory=dict_row, autocommit=True)

    def owner(self) -> psycopg.Connection[dict[str, Any]]:
        """A reusable autocommit connection as the migration owner, for fixtures and checks."""
        if self._owner is None or self._owner.closed:
            self._owner = self.connect()
        return self._owner

    def run(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement as the owner (postgres) and return its rows."""
        cur = self.owner().execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    @contextmanager
    def request(self, role: str, claims: dict[str, Any] | None = None) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One PostgREST-like request: commits on success, rolls back on error."""
        payload = {"role": role, **(claims or {})}
        with self.connect() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(psycopg.sql.SQL("set local role {}").format(psycopg.sql.Identifier(role)))
            cur.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(payload),))
            yield cur

    def call(self, role: str, claims: dict[str, Any] | None, query: str, params: Any = None) -> list[dict[str, Any]]:
        with self.request(role, claims) as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []


def user_claims(
    user_id: uuid.UUID, organization_id: uuid.UUID | None, user_metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Claims of a signed-in user's access token, as Supabase Auth issues them."""
    return {
        "sub": str(user_id),
        "aud": "authenticated",
        "app_metadata": {} if organization_id is None else {"organization_id": str(organization_id)},
        "user_metadata": user_metadata or {},
    }
