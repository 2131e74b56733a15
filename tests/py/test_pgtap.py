"""Run every pgTAP file in tests/sql with pg_prove, as postgres (as `supabase test db` does),
against a fresh database under each of Supabase's default-privilege behaviours."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.py.supabase_db import Database

SQL_TESTS = sorted((Path(__file__).resolve().parent.parent / "sql").glob("*.sql"))


@pytest.mark.parametrize("test_file", SQL_TESTS, ids=[path.name for path in SQL_TESTS])
def test_pgtap_file_passes(db_each_mode: Database, test_file: Path) -> None:
    result = subprocess.run(
        [
            "pg_prove",
            "--verbose",
            "--failures",
            "-h",
            db_each_mode.host,
            "-p",
            str(db_each_mode.port),
            "-U",
            "postgres",
            "-d",
            db_each_mode.name,
            str(test_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"pg_prove failed ({db_each_mode.mode} privileges):\n{result.stdout}\n{result.stderr}"
    )
