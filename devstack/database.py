"""Build a database the way `supabase db reset` would on a hosted project.

The compatibility layer runs as the superuser (Supabase's own setup), then every migration in
name order as the non-superuser `postgres`, then the seed, each file in its own transaction.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "compat"
MIGRATIONS = ROOT / "supabase" / "migrations"
SEED = ROOT / "supabase" / "seed.sql"
OWNER = "postgres"


def conninfo(host: str, port: int, user: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(host=host, port=port, user=user, dbname=dbname)


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))


def _run_file(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(path.read_text())
        except psycopg.Error as exc:
            raise RuntimeError(f"{path.name}: {exc}") from exc


def build_database(
    host: str, port: int, superuser: str, dbname: str, *, legacy_privileges: bool, seed: bool = True
) -> None:
    """Create `dbname` and load compat layer, migrations and (optionally) the seed into it."""
    with psycopg.connect(conninfo(host, port, superuser, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    admin_dsn = conninfo(host, port, superuser, dbname)
    _run_file(admin_dsn, COMPAT / "supabase.sql")
    if legacy_privileges:
        _run_file(admin_dsn, COMPAT / "legacy_default_privileges.sql")
    owner_dsn = conninfo(host, port, OWNER, dbname)
    for migration in migration_files():
        _run_file(owner_dsn, migration)
    if seed:
        _run_file(owner_dsn, SEED)
