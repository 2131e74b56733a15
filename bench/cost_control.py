"""Cost control under load and at scale, in one run:

- the gateway at 20 connections for an organization with a hard budget (every call reserves its
  worst case first, then settles it with its usage row) against an identical one without;
- the month-to-date budget read (`get_llm_budget_status_for_org`) at 0 and 1,000,000 usage rows;
- the dashboard's 30-day summary (`get_llm_usage_summary`, each grouping) at 1,000,000 usage rows.

    python -m bench.cost_control [--rounds N] [--duration S] [--rows N] [--output PATH]

Everything on 127.0.0.1: a throwaway PostgreSQL 15 (migrations + seed), the fake provider,
`python -m gateway` with default settings, wrk (`apt-get install -y wrk`). Only 2xx answers count;
any error answer or socket error fails the run (exit status 1, and the report says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

import jwt
import psycopg

from bench.gateway_load import (
    Load,
    Pids,
    Target,
    cpu_model,
    serve_gateway,
    write_wrk_script,
    wrk,
)
from devstack.database import conninfo

DBNAME = "bench_cost_control"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "cost_control.md"
DEFAULT_ROUNDS = 3
DEFAULT_DURATION = 5
WARMUP = 1
CONNECTIONS = 20
DEFAULT_ROWS = 1_000_000
READS = 2000  # month-to-date reads per measurement
SUMMARIES = 30  # summary calls per grouping
TARGET_SUMMARY_P50_MS = 50.0
PROMPT = "Classify this invoice: ACME Corp, 3 widgets, 120 USD"
PROVIDER_KEY = "sk-bench-not-a-real-key"
GROUPINGS = ("day", "model", "processor", "user")
# The seed's demo organization and its "Invoice triage" processor; the copies made here share them.
DEMO_ORG = "de000000-0000-4000-8000-000000000001"
DEMO_PROCESSOR = "dc000000-0000-4000-8000-000000000002"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def create_organization(conn: psycopg.Connection[tuple[object, ...]], name: str, budget: bool) -> tuple[str, str, str]:
    """A copy of the demo organization (same profiles, same processor) with an admin; with a hard
    monthly budget too large to refuse anything, so every call reserves and settles. Returns the
    organization, its admin and its processor."""
    org, admin, processor = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    conn.execute(
        "insert into public.organizations (id, name, llm_configuration)"
        " select %s, %s, llm_configuration from public.organizations where id = %s",
        (org, name, DEMO_ORG),
    )
    conn.execute(
        "insert into auth.users (id, email, raw_app_meta_data) values (%s, %s, %s)",
        (admin, f"admin@{name.lower().replace(' ', '-')}.bench", json.dumps({"organization_id": org})),
    )
    conn.execute("insert into public.organization_members values (%s, %s, 'admin')", (org, admin))
    conn.execute(
        "insert into public.processors (id, organization_id, name, configuration)"
        " select %s, %s, name, configuration from public.processors where id = %s",
        (processor, org, DEMO_PROCESSOR),
    )
    if budget:
        conn.execute(
            "insert into public.llm_budgets (organization_id, period, limit_usd, hard) values (%s, 'month', 1e7, true)",
            (org,),
        )
    return org, admin, processor


def token(secret: str, user: str, org: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 7200}
    return jwt.encode({**claims, "app_metadata": {"organization_id": org}}, secret, algorithm="HS256")


def load_usage(
    conn: psycopg.Connection[tuple[object, ...]], org: str, processors: list[str], users: list[str], rows: int
) -> float:
    """`rows` usage rows over the last 30 days, as batches of 100,000 (the triggers keep the rollup
    and the budget's counter as they would for the gateway's rows). Seconds taken."""
    started_at = time.monotonic()
    models = [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-haiku-4-5"),
        ("google", "gemini-2.5-flash"),
    ]
    batch = 100_000
    for offset in range(0, rows, batch):
        conn.execute(
            """
            insert into public.llm_usage_logs (organization_id, processor_id, user_id, provider, model_name,
              input_tokens, output_tokens, error_message, created_at)
            select %(org)s, (%(processors)s::uuid[])[1 + n %% %(np)s], (%(users)s::uuid[])[1 + n %% %(nu)s],
                   (%(providers)s::text[])[1 + n %% 4], (%(models)s::text[])[1 + n %% 4],
                   200 + n %% 1000, 20 + n %% 300, case when n %% 50 = 0 then 'HTTP 529' end,
                   now() - (n::float8 / %(rows)s::float8) * interval '30 days'
            from generate_series(%(first)s::integer, %(last)s::integer) as n
            """,
            {
                "org": org, "processors": processors, "np": len(processors), "users": users, "nu": len(users),
                "providers": [p for p, _ in models], "models": [m for _, m in models], "rows": rows,
                "first": offset + 1, "last": min(offset + batch, rows),
            },
        )  # fmt: skip
        conn.commit()
    return time.monotonic() - started_at


def timed(
    conn: psycopg.Connection[tuple[object, ...]], query: str, params: tuple[object, ...], calls: int
) -> list[float]:
    samples = []
    for _ in range(calls):
        started_at = time.perf_counter()
        conn.execute(query, params).fetchall()
        samples.append((time.perf_counter() - started_at) * 1000)
    return samples


def as_role(conn: psycopg.Connection[tuple[object, ...]], role: str, claims: Mapping[str, object]) -> None:
    """Session-wide, for a measuring connection: role and claims as PostgREST sets them per request."""
    conn.execute("select set_config('role', %s, false), set_config('request.jwt.claims', %s, false)",
                 (role, json.dumps({"role": role, **claims})))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION, help="measured seconds per wrk run")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="usage rows for the scale measurements")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    started_at = time.monotonic()
    failures: list[str] = []
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cost-control-")))
        served = serve_gateway(stack, logs, DBNAME)
        owner = conninfo(served.host, served.port, "postgres", DBNAME)
        with psycopg.connect(owner, autocommit=True) as conn:
            plain = create_organization(conn, "Plain Org", budget=False)
            budgeted = create_organization(conn, "Budgeted Org", budget=True)
            scale = create_organization(conn, "Scale Org", budget=True)
            postgres_version = str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]

        targets = {}
        for name, (org, admin, processor) in (("no budget", plain), ("hard budget", budgeted)):
            body = {"processor_id": processor, "prompt": PROMPT, "operation_id": f"bench-{name}"}
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token(served.secret, admin, org)}",
            }
            script = write_wrk_script(logs / f"{name.replace(' ', '-')}.lua", body, headers)
            targets[name] = Target(
                name,
                "-",
                f"{served.url}/functions/v1/execute-llm",
                script,
                Pids(served.fake.pid, served.postmaster, served.gateway.pid),
            )
        loads: dict[str, list[Load]] = {name: [] for name in targets}
        for number in range(args.rounds):
            for name, target in targets.items():
                wrk(target, CONNECTIONS, WARMUP)
                loads[name].append(wrk(target, CONNECTIONS, args.duration))
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
        for name, runs in loads.items():
            if errors := sum(load.errors for load in runs):
                failures.append(f"{name}: {errors} error answers or socket errors")

        time.sleep(2)  # calls wrk abandoned still finish and settle their reservations
        with psycopg.connect(owner, autocommit=True) as conn:
            [(reserved_rows,)] = conn.execute(
                "select count(*) from public.llm_usage_logs where organization_id = %s and reservation_id is not null",
                (budgeted[0],),
            ).fetchall()
            [(left_reserved,)] = conn.execute(
                "select trim_scale(coalesce(sum(reserved_usd), 0)) from private.llm_budget_periods as p"
                " join public.llm_budgets as b on b.id = p.budget_id where b.organization_id = %s",
                (budgeted[0],),
            ).fetchall()

        with psycopg.connect(owner) as conn:
            as_role(conn, "service_role", {})
            status_query = "select * from public.get_llm_budget_status_for_org(%s)"
            timed(conn, status_query, (scale[0],), 200)
            status_empty = timed(conn, status_query, (scale[0],), READS)
            conn.commit()

        print(f"loading {args.rows:,} usage rows", file=sys.stderr)
        with psycopg.connect(owner) as conn:
            processors = [str(uuid.uuid4()) for _ in range(10)]
            for processor in processors:
                conn.execute("insert into public.processors (id, organization_id, name) values (%s, %s, 'p')",
                             (processor, scale[0]))  # fmt: skip
            users = [scale[1]]
            for index in range(19):
                user = str(uuid.uuid4())
                conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"u{index}@scale.bench"))
                users.append(user)
            conn.commit()
            load_seconds = load_usage(conn, scale[0], processors, users, args.rows)
            conn.execute("analyze")
            conn.commit()

        with psycopg.connect(owner) as conn:
            as_role(conn, "service_role", {})
            timed(conn, status_query, (scale[0],), 200)
            status_full = timed(conn, status_query, (scale[0],), READS)
            [status_row] = conn.execute(status_query, (scale[0],)).fetchall()
            conn.commit()
            conn.execute("reset role")
            member = {"sub": scale[1], "aud": "authenticated", "app_metadata": {"organization_id": scale[0]}}
            as_role(conn, "authenticated", member)
            summaries = {}
            for grouping in GROUPINGS:
                query = "select * from public.get_llm_usage_summary(now() - interval '30 days', now(), %s)"
                timed(conn, query, (grouping,), 3)
                summaries[grouping] = timed(conn, query, (grouping,), SUMMARIES)
            [(calls,)] = conn.execute(
                "select sum(calls) from public.get_llm_usage_summary("
                "now() - interval '31 days', now() + interval '1 hour')"
            ).fetchall()
            if calls != args.rows:
                failures.append(f"the summary counts {calls} calls of the {args.rows} loaded")

    report = build_report(args, loads, reserved_rows, left_reserved, status_empty, status_full, status_row, summaries,
                          load_seconds, postgres_version, failures, time.monotonic() - started_at)  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"wrote {args.output}", file=sys.stderr)
    if failures:
        sys.exit("the run failed: " + "; ".join(failures))


def build_report(
    args: argparse.Namespace,
    loads: dict[str, list[Load]],
    reserved_rows: object,
    left_reserved: object,
    status_empty: list[float],
    status_full: list[float],
    status_row: tuple[object, ...],
    summaries: dict[str, list[float]],
    load_seconds: float,
    postgres_version: str,
    failures: list[str],
    runtime: float,
) -> str:
    def rps(name: str) -> float:
        return sum(load.ok for load in loads[name]) / sum(load.seconds for load in loads[name])

    def rounds(name: str) -> str:
        values = [load.rps for load in loads[name]]
        return f"{min(values):,.0f} to {max(values):,.0f}"

    plain, budgeted = rps("no budget"), rps("hard budget")
    worst_summary = max(statistics.median(samples) for samples in summaries.values())
    lines = [
        "# Cost control",
        "",
        *(
            ["**THIS RUN FAILED; its figures are not results:**", "", *(f"- {f}" for f in failures), ""]
            if failures
            else []
        ),
        "Command (from the repository root, wrk installed): `python -m bench.cost_control`"
        + (
            f" --rounds {args.rounds} --duration {args.duration} --rows {args.rows}"
            if (args.rounds, args.duration, args.rows) != (DEFAULT_ROUNDS, DEFAULT_DURATION, DEFAULT_ROWS)
            else ""
        )
        + f", {runtime / 60:.1f} min end to end.",
        "",
        f"- Machine: {os.cpu_count()} CPUs, {cpu_model()}, shared with other work; wrk, the fake provider, the gateway "
        f"and PostgreSQL {postgres_version} (fsync and synchronous_commit off) all run on it.",
        "- Gateway: `python -m gateway`, default settings (one worker, the configuration cache on). Two copies of the "
        'seed\'s demo organization and its "Invoice triage" processor, one with a hard monthly budget too large to '
        "refuse anything (so every call reserves its worst case, then its usage row settles it), one without; "
        f"wrk, one thread, {CONNECTIONS} keep-alive connections, {args.rounds} interleaved rounds of {WARMUP} s "
        "warm-up "
        f"and {args.duration} s measured each; only 2xx answers count.",
        f"- Scale: {args.rows:,} usage rows of one organization over the last 30 days (10 processors, 20 users, "
        "4 models; "
        f"loaded in {load_seconds:.0f} s through the same triggers the gateway's rows go through), with a hard monthly "
        "budget. Reads as PostgREST makes them (role and claims set), client-side wall time per call over one "
        "loopback "
        f"connection: {READS:,} month-to-date reads, {SUMMARIES} summaries per grouping.",
        "",
        "## The gateway with a hard budget",
        "",
        "| organization | req/s at 20 conn | rounds' req/s |",
        "|---|---:|---:|",
        f"| no budget | {plain:,.0f} | {rounds('no budget')} |",
        f"| hard budget | {budgeted:,.0f} | {rounds('hard budget')} |",
        "",
        f"A hard budget costs {1 - budgeted / plain:.0%} of the throughput here: one more round trip per call "
        "(`reserve_llm_budgets`, which locks the budget's counter row) and the settling of the reservation in the "
        "usage row's transaction; the gateway batches the reservations of concurrent calls (one round trip and "
        f"one lock of the budget's counter per batch). {reserved_rows:,} usage rows carried their reservation, and "
        f"once the calls wrk left in flight had finished, {left_reserved} USD stayed reserved.",
        "",
        "## Month-to-date and the dashboard",
        "",
        "| read | usage rows | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|",
        *(
            f"| `get_llm_budget_status_for_org` | {rows:,} | {statistics.median(samples):.3f} "
            f"| {percentile(samples, 0.99):.3f} |"
            for rows, samples in ((0, status_empty), (args.rows, status_full))
        ),
        *(
            f"| `get_llm_usage_summary` (30 days, by {grouping}) | {args.rows:,} | {statistics.median(samples):.2f} "
            f"| {percentile(samples, 0.99):.2f} |"
            for grouping, samples in summaries.items()
        ),
        "",
        f"- Month-to-date read: the same one-row lookup at 0 and {args.rows:,} rows (the counter is kept with each "
        f"usage row; nothing sums `llm_usage_logs`). At {args.rows:,} rows it read spent {status_row[5]} USD.",
        f"- 30-day summary ≤ {TARGET_SUMMARY_P50_MS:g} ms p50: "
        + (
            "met"
            if worst_summary <= TARGET_SUMMARY_P50_MS
            else f"**missed by {worst_summary - TARGET_SUMMARY_P50_MS:.1f} ms**"
        )
        + f", {worst_summary:.2f} ms for the slowest grouping (whole hours from the hourly rollup, the partial hours "
        "at "
        "either end from the usage rows).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
