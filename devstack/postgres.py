"""Start a throwaway PostgreSQL 15 cluster with pytest-postgresql's executor.

PostgreSQL refuses to run as root. CI and fresh containers run as root, so there pg_ctl runs as
the `postgres` OS user (created by the Debian package) through `runuser`.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from pytest_postgresql.executors import PostgreSQLExecutor

SUPERUSER = "supabase_admin"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
_PG_CTL_AS_POSTGRES = Path(__file__).with_name("pg_ctl_as_postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_ctl() -> str:
    if os.geteuid() == 0:
        return str(_PG_CTL_AS_POSTGRES)
    return str(PG_BIN / "pg_ctl")


def _wait_until_accepting(executor: PostgreSQLExecutor, timeout: float = 60.0) -> None:
    """The port opens before recovery ends ("the database system is starting up"): retry until a
    real connection succeeds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(host=executor.host, port=executor.port, user=executor.user, dbname="postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def running_cluster(port: int | None = None, workdir: Path | None = None) -> Iterator[PostgreSQLExecutor]:
    """Yield a started cluster whose superuser is `supabase_admin`; stop and remove it after."""
    base = Path(tempfile.mkdtemp(prefix="llmcfg-pg-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        base.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    executor = PostgreSQLExecutor(
        executable=_pg_ctl(),
        host="127.0.0.1",
        port=port or free_port(),
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "postgresql.log"),
        startparams="-w",
        dbname="postgres",
        user=SUPERUSER,
        postgres_options=" -c max_connections=200 -c fsync=off -c synchronous_commit=off",
    )
    executor.start()
    try:
        _wait_until_accepting(executor)
        yield executor
    finally:
        executor.stop()
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
