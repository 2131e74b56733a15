"""What `supabase db lint` and the SQL style checks would say: nothing."""

from __future__ import annotations

import subprocess
import sys

from devstack.database import ROOT
from tests.py.supabase_db import Database


def test_migrations_and_seed_pass_sqlfluff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "supabase/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_plpgsql_function_passes_plpgsql_check(db: Database) -> None:
    functions = db.run(
        """
        select p.oid::regprocedure::text as function, coalesce(t.tgrelid, 0)::oid as relid,
               t.tgnewtable::text as newtable, t.tgoldtable::text as oldtable
        from pg_proc as p
        join pg_namespace as n on n.oid = p.pronamespace
        join pg_language as l on l.oid = p.prolang
        left join lateral (
          select tg.tgrelid, tg.tgnewtable, tg.tgoldtable from pg_trigger as tg where tg.tgfoid = p.oid limit 1
        ) as t on true
        where l.lanname = 'plpgsql' and n.nspname in ('public', 'private')
        """
    )
    assert len(functions) >= 15, "expected the product's plpgsql functions to be found"
    findings = []
    for function in functions:
        rows = db.run(
            "select * from extensions.plpgsql_check_function_tb(%s::regprocedure, %s::oid,"
            " performance_warnings => true, extra_warnings => true, security_warnings => true,"
            " newtable => %s, oldtable => %s)",
            (function["function"], function["relid"], function["newtable"], function["oldtable"]),
        )
        findings += [f"{function['function']}: {row['level']} {row['message']} (line {row['lineno']})" for row in rows]
    assert findings == [], "\n".join(findings)
