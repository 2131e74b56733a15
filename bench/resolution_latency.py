"""Per-call latency of LLM configuration resolution, measured inside PostgreSQL at growing scale.

    python -m bench.resolution_latency [--rounds N] [--calls-per-round N] [--output PATH]

Starts a throwaway PostgreSQL 15 cluster, builds one database (compat layer, migrations, seed),
then grows it scale by scale with set-based inserts and, at each scale, times
public.get_effective_llm_config (as `authenticated`) and public.get_effective_llm_config_for_org
(as `service_role`) call by call with clock_timestamp(), so client round trips are excluded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from devstack.database import OWNER, build_database, conninfo, migration_files
from devstack.postgres import running_cluster

DBNAME = "bench_resolution"
PROCESSORS_PER_ORG = 10
SCALES = (10, 10_000, 100_000)  # organizations; processors are PROCESSORS_PER_ORG times as many
WARMUP_CALLS = 500
DEFAULT_ROUNDS = 9
DEFAULT_CALLS_PER_ROUND = 2000
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "resolution_latency.md"
TARGET_P50_MS = 0.3
TARGET_P99_MS = 1.0
# The API role PostgREST switches to for each function: signed-in users' and the gateway's.
FUNCTIONS = {
    "get_effective_llm_config": "authenticated",
    "get_effective_llm_config_for_org": "service_role",
}

# Deterministic ids, so the measuring procedure can pick random rows from their numbers alone;
# md5 spreads them over the uuid space like gen_random_uuid() does in the primary key indexes.
ORG_ID = "md5('org:' || {i})::uuid"
USER_ID = "md5('user:' || {i} || ':' || {role})::uuid"
PROCESSOR_ID = "md5('processor:' || {i} || ':' || {j})::uuid"

# The validation triggers cost 0.2 to 0.5 ms a row in PL/pgSQL, minutes at a million rows; the
# loaded rows hold a handful of distinct configurations, validated once each below.
DISABLE_VALIDATION = """
alter table public.organizations disable trigger organizations_validate_llm_configuration;
alter table public.processors disable trigger processors_validate_configuration
"""

# Organization kinds by i mod 4: no configuration; a default profile only; several profiles with a
# default, which has two fallbacks; several profiles without one. `fast` and `reviewer` exist in the last two, `main` in
# the second; `powerful` is in no organization but is a catalog category.
LOAD_ORGANIZATIONS = f"""
insert into public.organizations (id, name, llm_configuration)
select {ORG_ID.format(i="i")}, 'bench org ' || i,
  case mod(i, 4)
    when 0 then null
    when 1 then '{{"default_profile": "main",
                  "profiles": {{"main": {{"provider": "openai", "model": "gpt-4o-mini"}}}}}}'
    when 2 then '{{"default_profile": "balanced", "profiles": {{
                  "fast": {{"provider": "anthropic", "model": "claude-haiku-4-5", "settings": {{"temperature": 0.2}}}},
                  "balanced": {{"provider": "openai", "model": "gpt-4o", "settings": {{"max_tokens": 2048}},
                               "fallbacks": ["fast", {{"provider": "openai", "model": "gpt-4o-mini"}}]}},
                  "reviewer": {{"provider": "google", "model": "gemini-2.5-pro"}}}}}}'
    else '{{"profiles": {{
           "fast": {{"provider": "mistral", "model": "mistral-small-latest"}},
           "reviewer": {{"provider": "anthropic", "model": "claude-opus-4-5", "settings": {{"temperature": 0.1}}}}}}}}'
  end::jsonb
from generate_series(%(first)s::integer, %(last)s) as i
"""

# An owner and a member per organization; the member is the measured caller.
LOAD_USERS = f"""
insert into auth.users (id, email, raw_app_meta_data)
select {USER_ID.format(i="i", role="r.role")}, r.role || '-' || i || '@bench.test',
  jsonb_build_object('organization_id', {ORG_ID.format(i="i")})
from generate_series(%(first)s::integer, %(last)s) as i
cross join (values ('owner'), ('member')) as r (role)
"""

LOAD_MEMBERS = f"""
insert into public.organization_members (organization_id, user_id, role)
select {ORG_ID.format(i="i")}, {USER_ID.format(i="i", role="r.role")}, r.role
from generate_series(%(first)s::integer, %(last)s) as i
cross join (values ('owner'), ('member')) as r (role)
"""

# Processor kinds by j mod 4: a profile the organization has (`fast`, or `main` where that is the
# only one); `powerful` (a catalog category only); no profile; a name found nowhere. Even j also
# override a setting.
LOAD_PROCESSORS = f"""
insert into public.processors (id, organization_id, name, configuration)
select {PROCESSOR_ID.format(i="i", j="j")}, {ORG_ID.format(i="i")}, 'bench processor ' || j,
  case mod(j, 4)
    when 0 then jsonb_build_object('llm_profile', case mod(i, 4) when 1 then 'main' else 'fast' end)
    when 1 then '{{"llm_profile": "powerful"}}'
    when 2 then '{{}}'
    else '{{"llm_profile": "nightly-batch"}}'
  end::jsonb
  || case when mod(j, 2) = 0 then '{{"settings_override": {{"temperature": 0.1}}}}' else '{{}}' end::jsonb
from generate_series(%(first)s::integer, %(last)s) as i
cross join generate_series(1, {PROCESSORS_PER_ORG}) as j
"""

# One organization in 100, all of the kind that resolves to OpenAI, stores an OpenAI key, so
# api_key_source takes both branches. Vault encrypts each: keep them few.
LOAD_KEYS = f"""
select vault.create_secret('sk-bench-' || i, private.org_api_key_secret_name({ORG_ID.format(i="i")}, 'openai'))
from generate_series(%(first)s::integer, %(last)s) as i
where mod(i, 100) = 1
"""

ENABLE_AND_VALIDATE = """
alter table public.organizations enable trigger organizations_validate_llm_configuration;
alter table public.processors enable trigger processors_validate_configuration;
select private.assert_valid_llm_configuration(d.c)
from (select distinct llm_configuration from public.organizations) as d (c);
select private.assert_valid_processor_configuration(d.c)
from (select distinct configuration from public.processors) as d (c)
"""

# One transaction per call, as PostgREST runs one per request with the role and claims set
# locally; only the function call lies between the two clock_timestamp() readings.
MEASURE_PROCEDURE = f"""
create procedure pg_temp.measure(
  p_function text, p_organizations integer, p_calls integer,
  inout p_p50_ms double precision default null, inout p_p99_ms double precision default null
)
language plpgsql
as $$
declare
  v_org uuid[];
  v_processor uuid[];
  v_claims text[];
  v_ms double precision[] := array_fill(null::double precision, array[p_calls]);
  v_start timestamptz;
  v_end timestamptz;
begin
  select array_agg({ORG_ID.format(i="s.i")}),
         array_agg({PROCESSOR_ID.format(i="s.i", j="s.j")}),
         array_agg(jsonb_build_object(
           'sub', {USER_ID.format(i="s.i", role="'member'")}, 'role', 'authenticated', 'aud', 'authenticated',
           'app_metadata', jsonb_build_object('organization_id', {ORG_ID.format(i="s.i")}))::text)
  into v_org, v_processor, v_claims
  from (
    select 1 + floor(random() * p_organizations)::integer as i,
           1 + floor(random() * {PROCESSORS_PER_ORG})::integer as j
    from generate_series(1, p_calls)
  ) as s;
  for k in 1 .. p_calls loop
    commit;
    if p_function = 'get_effective_llm_config' then
      set local role authenticated;
      perform set_config('request.jwt.claims', v_claims[k], true);
      v_start := clock_timestamp();
      perform public.get_effective_llm_config(v_processor[k]);
      v_end := clock_timestamp();
    else
      set local role service_role;
      perform set_config('request.jwt.claims', '{{"role": "service_role"}}', true);
      v_start := clock_timestamp();
      perform public.get_effective_llm_config_for_org(v_org[k], v_processor[k]);
      v_end := clock_timestamp();
    end if;
    v_ms[k] := extract(epoch from v_end - v_start) * 1000;
  end loop;
  commit;
  select percentile_cont(0.5) within group (order by ms), percentile_cont(0.99) within group (order by ms)
  into p_p50_ms, p_p99_ms
  from unnest(v_ms) as ms;
end
$$
"""

# Which resolution paths the data exercises, over every processor of the first 100 organizations
# (the kinds repeat every 4 organizations and every 4 processors).
PATH_MIX = f"""
select (r ->> 'source') || ' with ' || (r ->> 'api_key_source') || ' key' as path, count(*) as calls
from generate_series(1, 100) as i
cross join generate_series(1, {PROCESSORS_PER_ORG}) as j
cross join public.get_effective_llm_config_for_org({ORG_ID.format(i="i")}, {PROCESSOR_ID.format(i="i", j="j")}) as r
group by 1
order by 2 desc, 1
"""

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Result:
    organizations: int
    function: str
    p50_ms: float
    p99_ms: float
    p50_range_ms: tuple[float, float]
    worst_p99_ms: float
    calls: int


def fetch_one(conn: Connection, query: str, params: Any = None) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def load(owner: Connection, admin: Connection, first: int, last: int) -> None:
    """Add organizations first..last with their users, members, processors and keys, as postgres."""
    params = {"first": first, "last": last}
    with owner.transaction():
        owner.execute(DISABLE_VALIDATION)
        for statement in (LOAD_ORGANIZATIONS, LOAD_USERS, LOAD_MEMBERS, LOAD_PROCESSORS, LOAD_KEYS):
            owner.execute(statement, params)
        owner.execute(ENABLE_AND_VALIDATE)
    # As the superuser, to reach auth and vault too: statistics, visibility map and hint bits
    # settled now rather than during the measurement.
    admin.execute("vacuum (analyze)")


def measure(owner: Connection, organizations: int, rounds: int, calls_per_round: int) -> list[Result]:
    """Warm each function up, then alternate them round by round so noise hits both alike."""
    call = "call pg_temp.measure(%s, %s, %s)"
    for function in FUNCTIONS:
        owner.execute(call, (function, organizations, WARMUP_CALLS))
    per_round: dict[str, list[tuple[float, float]]] = {function: [] for function in FUNCTIONS}
    for _ in range(rounds):
        for function in FUNCTIONS:
            p50, p99 = fetch_one(owner, call, (function, organizations, calls_per_round))
            per_round[function].append((p50, p99))
    return [
        Result(
            organizations,
            function,
            statistics.median(p50 for p50, _ in percentiles),
            statistics.median(p99 for _, p99 in percentiles),
            (min(p50 for p50, _ in percentiles), max(p50 for p50, _ in percentiles)),
            max(p99 for _, p99 in percentiles),
            rounds * calls_per_round,
        )
        for function, percentiles in per_round.items()
    ]


def path_mix(owner: Connection) -> str:
    with owner.transaction():
        # has_org_api_key reports stored keys to the service role only.
        owner.execute("select set_config('request.jwt.claims', '{\"role\": \"service_role\"}', true)")
        rows = owner.execute(PATH_MIX).fetchall()
    return ", ".join(f"{path} {calls}" for path, calls in rows)


def verdict(results: list[Result]) -> list[str]:
    lines = []
    for function in FUNCTIONS:
        rows = [r for r in results if r.function == function]
        missed = ", ".join(f"{r.organizations:,}" for r in rows if r.p50_ms > TARGET_P50_MS or r.p99_ms > TARGET_P99_MS)
        met = f"misses the target at {missed} organizations" if missed else "meets the target at every scale"
        growth = rows[-1].p50_ms / rows[0].p50_ms
        lines.append(
            f"- `{function}` {met}; p50 at {rows[-1].organizations:,} organizations is {growth:.2f}x "
            f"the p50 at {rows[0].organizations:,}."
        )
    return lines


def migrations_fingerprint() -> str:
    """Which schema was measured: the migrations are read from the working tree, committed or not."""
    files = migration_files()
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()
    return f"{len(files)} files up to `{files[-1].name}`, sha256 of their contents `{digest[:12]}`"


def report(
    results: list[Result], load_seconds: dict[int, float], facts: dict[str, str], args: argparse.Namespace
) -> str:
    command = "python -m bench.resolution_latency"
    if (args.rounds, args.calls_per_round) != (DEFAULT_ROUNDS, DEFAULT_CALLS_PER_ROUND):
        command += f" --rounds {args.rounds} --calls-per-round {args.calls_per_round}"
    lines = [
        "# Resolution latency",
        "",
        f"Command (from the repository root): `{command}`, {facts['runtime']} end to end.",
        "",
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {platform.system()} {platform.machine()}, shared with other "
        f"work; load average {facts['load']} (1, 5, 15 min) at the end of the run.",
        f"- Schema: `supabase/migrations` as found in the working tree, {facts['migrations']}.",
        f"- Server: {facts['version']}; fsync off, synchronous_commit off, autovacuum off (the benchmark "
        f"vacuums after each load), shared_buffers {facts['shared_buffers']}.",
        "- Each call is its own transaction with the caller's role and JWT claims set locally, as PostgREST "
        "does; its time is clock_timestamp() around the call alone, inside the database. Each call picks a "
        f"random organization and one of its {PROCESSORS_PER_ORG} processors; the signed-in caller is a member "
        "of that organization, with a different user almost every call.",
        f"- Per scale and function: {WARMUP_CALLS} warm-up calls, then {args.rounds} rounds of "
        f"{args.calls_per_round:,} calls, the two functions alternating round by round. p50 and p99 are the "
        "medians over the rounds (a burst of other work spoils one round, not the figure); the spread of the "
        "rounds' p50 and the worst round's p99 show the noise.",
        f"- Resolution paths (source, api_key_source) over all {100 * PROCESSORS_PER_ORG:,} processors of the first "
        f"100 organizations: {facts['paths']}.",
        "",
        "| organizations | processors | load (s) | function | role | p50 (ms) | p99 (ms) | rounds' p50 (ms) "
        "| worst round p99 (ms) | calls |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.organizations:,} | {r.organizations * PROCESSORS_PER_ORG:,} | {load_seconds[r.organizations]:.0f} "
        f"| `{r.function}` | {FUNCTIONS[r.function]} | {r.p50_ms:.3f} | {r.p99_ms:.3f} "
        f"| {r.p50_range_ms[0]:.3f} to {r.p50_range_ms[1]:.3f} | {r.worst_p99_ms:.3f} | {r.calls:,} |"
        for r in results
    ]
    lines += ["", f"Target: p50 ≤ {TARGET_P50_MS} ms, p99 ≤ {TARGET_P99_MS} ms, flat with size.", ""]
    lines += verdict(results)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="measured rounds per scale and function")
    parser.add_argument("--calls-per-round", type=int, default=DEFAULT_CALLS_PER_ROUND, help="calls in each round")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the Markdown report")
    args = parser.parse_args()

    started = time.monotonic()
    migrations = migrations_fingerprint()
    results: list[Result] = []
    load_seconds: dict[int, float] = {}
    with running_cluster() as cluster:
        build_database(cluster.host, cluster.port, cluster.user, DBNAME, legacy_privileges=False)
        admin_dsn = conninfo(cluster.host, cluster.port, cluster.user, DBNAME)
        owner_dsn = conninfo(cluster.host, cluster.port, OWNER, DBNAME)
        with psycopg.connect(admin_dsn, autocommit=True) as admin, psycopg.connect(owner_dsn, autocommit=True) as owner:
            # A background vacuum of a freshly loaded table would land in the measurements.
            admin.execute("alter system set autovacuum = off")
            admin.execute("select pg_reload_conf()")
            owner.execute(MEASURE_PROCEDURE)
            loaded = 0
            for organizations in SCALES:
                load_started = time.monotonic()
                load(owner, admin, loaded + 1, organizations)
                load_seconds[organizations] = time.monotonic() - load_started
                loaded = organizations
                print(f"{organizations:,} organizations loaded in {load_seconds[organizations]:.0f} s", file=sys.stderr)
                for result in measure(owner, organizations, args.rounds, args.calls_per_round):
                    results.append(result)
                    print(f"  {result.function}: p50 {result.p50_ms:.3f}, p99 {result.p99_ms:.3f} ms", file=sys.stderr)
            facts = {
                "version": str(fetch_one(owner, "select version()")[0]),
                "shared_buffers": str(fetch_one(owner, "show shared_buffers")[0]),
                "paths": path_mix(owner),
                "migrations": migrations,
                "load": ", ".join(f"{load:.1f}" for load in os.getloadavg()),
                "runtime": f"{(time.monotonic() - started) / 60:.1f} min",
            }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report(results, load_seconds, facts, args))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
