"""Real PostgreSQL 15 behaving like hosted Supabase, shared by every test.

One cluster per session (pytest-postgresql's executor), two template databases built once —
one per default-privilege behaviour of Supabase projects — and a fresh clone per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql.executors import PostgreSQLExecutor

from devstack.database import OWNER, build_database, conninfo
from devstack.postgres import running_cluster
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants, create_tenants

TEST_HELPERS = Path(__file__).resolve().parent.parent / "sql" / "helpers" / "supabase_test_helpers.sql"
PRIVILEGE_MODES = ("legacy", "explicit")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgreSQLExecutor]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def templates(pg_cluster: PostgreSQLExecutor) -> dict[str, str]:
    """Template database name per privilege mode: compat layer, migrations, seed, test helpers."""
    names = {}
    for mode in PRIVILEGE_MODES:
        name = f"tmpl_{mode}"
        build_database(pg_cluster.host, pg_cluster.port, pg_cluster.user, name, legacy_privileges=mode == "legacy")
        with psycopg.connect(conninfo(pg_cluster.host, pg_cluster.port, OWNER, name)) as conn:
            conn.execute(TEST_HELPERS.read_text())  # type: ignore[arg-type]
        names[mode] = name
    return names


def clone_database(cluster: PostgreSQLExecutor, template: str) -> Database:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(cluster.host, cluster.port, cluster.user, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template)))
    return Database(host=cluster.host, port=cluster.port, name=name, superuser=cluster.user)


def drop_database(database: Database) -> None:
    with psycopg.connect(
        conninfo(database.host, database.port, database.superuser, "postgres"), autocommit=True
    ) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database.name)))


@pytest.fixture
def db(pg_cluster: PostgreSQLExecutor, templates: dict[str, str]) -> Iterator[Database]:
    """A fresh database of an older Supabase project (auto-grants on): the riskier behaviour."""
    database = clone_database(pg_cluster, templates["legacy"])
    yield database
    drop_database(database)


@pytest.fixture(params=PRIVILEGE_MODES)
def db_each_mode(
    request: pytest.FixtureRequest, pg_cluster: PostgreSQLExecutor, templates: dict[str, str]
) -> Iterator[Database]:
    """A fresh database under each of Supabase's default-privilege behaviours in turn."""
    database = clone_database(pg_cluster, templates[request.param])
    database.mode = request.param
    yield database
    drop_database(database)


@pytest.fixture
def tenants(db: Database) -> Tenants:
    return create_tenants(db)
