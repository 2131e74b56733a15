"""Throughput, latency, CPU and memory of the gateway's execute-llm under load, next to the same
load straight at the provider and through the bare framework, with both HTTP client transports
and the opt-in configuration cache measured.

    python -m bench.gateway_load [--rounds N] [--duration S] [--warmup S] [--no-profile] [--output PATH]

One run, everything on 127.0.0.1: a throwaway PostgreSQL 15 (migrations + seed), the fake
OpenAI-compatible provider (`python -m tests.fakes.providers`), `python -m gateway` (one uvicorn
worker, its aiohttp-backed client), the same app on httpx's own transport, the same app with
GATEWAY_CONFIG_CACHE_SECONDS set, and `bench.framework_floor` (the same framework and client doing
none of the gateway's work), each in its own process. wrk sends the same chat completion straight
to the fake, through the floor and through each gateway's execute-llm (JWT, effective
configuration, the organization's Vault key, provider call, committed usage row), at 1 and 20
connections, in interleaved rounds. Needs wrk (`apt-get install -y wrk`); the profile of
the gateway worker needs py-spy on PATH (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from importlib import metadata, util
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import jwt
import psycopg
from litestar import Litestar

from devstack.database import build_database, conninfo
from devstack.postgres import free_port, running_cluster
from gateway.app import build_http_client, create_app
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Where py-spy's frames point, to name their package.
SITE_PACKAGES = tuple(dict.fromkeys(Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")))
STDLIB = Path(sysconfig.get_paths()["stdlib"])
HOST = "127.0.0.1"
DBNAME = "bench_gateway"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "gateway_load.md"
DEFAULT_ROUNDS = 3
DEFAULT_DURATION = 5
DEFAULT_WARMUP = 1
PROFILE_SECONDS = 10
CONNECTIONS = (1, 20)
TRANSPORTS = ("aiohttp", "httpx")  # the gateway's own client first, then httpx's default transport
CACHE_SECONDS = "5"
CACHED = f"aiohttp, config cache {CACHE_SECONDS} s"
# Gateway processes side by side: the one as shipped first (the profile's), then its variants.
VARIANTS = (*TRANSPORTS, CACHED)
# aiohttp's own client, without the httpx API on top: the client micro-benchmark's reference.
RAW_AIOHTTP = "aiohttp, no httpx"
ROLES = ("gateway", "fake", "postgres", "wrk")
# From supabase/seed.sql: the demo admin of Demo Org, and its "Invoice triage" processor, whose
# "fast" profile is openai gpt-4o-mini.
DEMO_ADMIN = "d0000000-0000-4000-8000-000000000002"
DEMO_ORG = "de000000-0000-4000-8000-000000000001"
DEMO_PROCESSOR = "dc000000-0000-4000-8000-000000000002"
MODEL = "gpt-4o-mini"
PROMPT = "Classify this invoice: ACME Corp, 3 widgets, 120 USD"
PROVIDER_KEY = "sk-bench-not-a-real-key"
# Stored through manage-llm-keys, so every call reads the organization's key from Vault.
ORG_KEY = "sk-bench-org-key-not-a-real-key"
WRK_TIMEOUT = "10s"

TARGET_OVERHEAD_P50_MS = 2.0
TARGET_RPS = 870
TARGET_RSS_MB = 120
# The figures for LiteLLM's proxy 1.108 (one worker, no database) on this machine class.
LITELLM = {1: (None, 12.6), 20: (87.0, 220.0)}  # connections -> (req/s, p50 ms)

# Per-request CPU of each transport alone, in this process: sequential POSTs to the fake.
CLIENT_WARMUP = 300
CLIENT_CALLS = 3000
PROFILE_RATE = 250  # py-spy samples per second
_SERVER, _CLIENT, _DATABASE = "HTTP server, framework", "provider HTTP client", "database client"
# Where each package's time goes in the profile's summary; the rest is "other".
LAYERS = {
    "asyncio": "event loop",
    "selectors": "event loop",
    "uvloop": "event loop",
    "uvicorn": _SERVER,
    "h11": _SERVER,  # uvicorn's HTTP parser; httpx's own transport would use it as a client too
    "httptools": _SERVER,
    "litestar": _SERVER,
    "anyio": _SERVER,
    "msgspec": _SERVER,
    "httpx": _CLIENT,
    "httpx_aiohttp": _CLIENT,
    "httpcore": _CLIENT,
    "aiohttp": _CLIENT,
    "yarl": _CLIENT,
    "multidict": _CLIENT,
    "psycopg": _DATABASE,
    "psycopg_pool": _DATABASE,
    "gateway": "gateway's own code",
}
TOP = 12

# wrk calls done() once per run with the run's histogram; one JSON line is easier to read back
# than its --latency text. Latencies are in microseconds.
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, '
    .. '"status_errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Pids:
    fake: int
    postmaster: int
    gateway: int | None = None


@dataclass(frozen=True)
class Target:
    name: str
    transport: str
    url: str
    script: Path
    pids: Pids  # the processes serving it


@dataclass(frozen=True)
class Load:
    """One wrk run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    status_errors: int

    @property
    def ok(self) -> int:
        return self.requests - self.status_errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Snapshot:
    per_pid: dict[int, tuple[str, float, float]]  # pid -> (role, user s, system s)
    children: float  # CPU seconds of this script's finished children: the wrk runs
    machine: float  # busy CPU seconds of the whole machine since boot


@dataclass(frozen=True)
class Round:
    """One warm-up and one measured wrk run, with the CPU spent during the measured one."""

    warmup: Load
    load: Load
    cpu: dict[str, tuple[float, float]]  # role -> (user, system) CPU seconds
    machine: float  # busy CPU seconds of the whole machine
    memory: tuple[float, float] | None  # the gateway worker's VmRSS and VmHWM (MB) after the run


@dataclass(frozen=True)
class Run:
    """A target at a number of connections, over all its rounds."""

    target: str
    transport: str
    connections: int
    rounds: list[Round]

    @property
    def load(self) -> Load:
        """Requests and time summed; p50 and p99 the medians of the rounds' (a burst of other work
        on the machine spoils one round, not the figure)."""
        loads = [r.load for r in self.rounds]
        return Load(
            requests=sum(load.requests for load in loads),
            seconds=sum(load.seconds for load in loads),
            p50_ms=statistics.median(load.p50_ms for load in loads),
            p99_ms=statistics.median(load.p99_ms for load in loads),
            socket_errors=sum(load.socket_errors for load in loads),
            status_errors=sum(load.status_errors for load in loads),
        )

    @property
    def rps_range(self) -> tuple[float, float]:
        return min(r.load.rps for r in self.rounds), max(r.load.rps for r in self.rounds)

    @property
    def cpu_ms(self) -> dict[str, tuple[float, float]]:
        """Role -> (user, system) CPU ms per request."""
        per_request = 1000 / max(self.load.requests, 1)
        roles = [role for role in ROLES if role in self.rounds[0].cpu]
        return {
            role: (
                sum(r.cpu[role][0] for r in self.rounds) * per_request,
                sum(r.cpu[role][1] for r in self.rounds) * per_request,
            )
            for role in roles
        }

    @property
    def machine_cpus(self) -> float:
        """CPUs busy on average, of os.cpu_count()."""
        return sum(r.machine for r in self.rounds) / self.load.seconds

    @property
    def other_cpus(self) -> float:
        """Of which not by the processes of this benchmark."""
        ours = sum(sum(u + s for u, s in r.cpu.values()) for r in self.rounds)
        return max(sum(r.machine for r in self.rounds) - ours, 0.0) / self.load.seconds

    @property
    def memory(self) -> tuple[float, float] | None:
        """VmRSS after the last round, peak VmHWM."""
        last = self.rounds[-1].memory
        return None if last is None else (last[0], max(r.memory[1] for r in self.rounds if r.memory))

    @property
    def completed(self) -> int:
        """Successful responses, warm-ups included."""
        return sum(r.warmup.ok + r.load.ok for r in self.rounds)


@dataclass(frozen=True)
class Billing:
    transport: str
    rows: int
    failed_rows: int
    completed: int
    wrk_runs: int
    max_in_flight: int  # responses wrk may have dropped: its connections, summed over its runs


@dataclass(frozen=True)
class ClientCpu:
    transport: str
    median_ms: float
    mean_ms: float


@dataclass(frozen=True)
class Profile:
    samples: int
    active: float  # samples over the samples a fully busy worker would give
    cpu_ms: float  # worker CPU per request during the profiled run
    by_package: list[tuple[str, float]]  # share of samples, by the innermost frame's package
    top_self: list[tuple[str, float]]
    gateway_inclusive: list[tuple[str, int]]  # samples under each of the gateway's functions


# --- processes ------------------------------------------------------------------------------


@contextmanager
def started(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own session (Ctrl-C reaches this script only, which stops it)."""
    with (logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    """Until `ready()`; if the process exits or takes too long, fail with the end of its log
    (the log directory goes away with everything else)."""
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{log.stem} did not start:\n{tail}")
        time.sleep(0.1)


def accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def answers_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def gateway_argv(variant: str, port: int) -> list[str]:
    if variant != "httpx":
        return [sys.executable, "-m", "gateway"]
    return uvicorn_argv("bench.gateway_load:httpx_transport_app", port)


def uvicorn_argv(factory: str, port: int) -> list[str]:
    """uvicorn as `python -m gateway` runs it (one worker, no server header), for `factory`."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-server-header",
    ]


def httpx_transport_app() -> Litestar:
    """uvicorn factory: the gateway exactly as `python -m gateway` builds it, but for its client."""
    settings = Settings.from_env()
    client = build_http_client(settings, aiohttp_transport=False)
    app = create_app(settings, http_client=client)
    app.on_shutdown.append(client.aclose)  # create_app leaves a client it was given to its caller
    return app


# --- measurements ---------------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on; the command name may contain spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):  # gone meanwhile
                if int(proc_stat(int(entry.name))[1]) == parent:
                    pids.append(int(entry.name))
    return pids


def process_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far."""
    fields = proc_stat(pid)
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def snapshot(pids: Pids) -> Snapshot:
    roles = {"fake": [pids.fake], "postgres": [pids.postmaster, *children_of(pids.postmaster)]}
    if pids.gateway is not None:
        roles["gateway"] = [pids.gateway]
    per_pid = {}
    for role, members in roles.items():
        for pid in members:
            with suppress(OSError):
                per_pid[pid] = (role, *process_cpu(pid))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    return Snapshot(per_pid, children.ru_utime + children.ru_stime, (sum(jiffies) - idle) / os.sysconf("SC_CLK_TCK"))


def memory_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (peak RSS) of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def write_wrk_script(path: Path, body: dict[str, Any], headers: dict[str, str]) -> Path:
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
    path.write_text(WRK_SCRIPT.format(body=json.dumps(body), headers=lines))
    return path


def wrk(target: Target, connections: int, seconds: int) -> Load:
    argv = [
        str(shutil.which("wrk")),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(target.script),
        target.url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)  # noqa: S603
    line = next(line for line in out.stdout.splitlines() if line.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    return Load(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        socket_errors=raw["socket_errors"],
        status_errors=raw["status_errors"],
    )


def measure(target: Target, connections: int, args: argparse.Namespace) -> Round:
    warmup = wrk(target, connections, args.warmup)  # connections opened, pools filled, caches warm
    before = snapshot(target.pids)
    load = wrk(target, connections, args.duration)
    after = snapshot(target.pids)
    cpu: dict[str, tuple[float, float]] = {}
    for pid, (role, user, system) in after.per_pid.items():
        _, user0, system0 = before.per_pid.get(pid, (role, 0.0, 0.0))  # a process started meanwhile: all of it
        total_user, total_system = cpu.get(role, (0.0, 0.0))
        cpu[role] = (total_user + user - user0, total_system + system - system0)
    cpu["wrk"] = (after.children - before.children, 0.0)  # wrk's user and system time together
    gateway = target.pids.gateway
    return Round(warmup, load, cpu, after.machine - before.machine, memory_mb(gateway) if gateway else None)


def log_run(run: Run) -> None:
    load, memory = run.load, run.memory
    print(
        f"{run.target} ({run.transport}) c={run.connections}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
        f"p99 {load.p99_ms:.2f} ms, errors {load.socket_errors + load.status_errors}, CPU ms/req "
        + ", ".join(f"{role} {sum(ms):.2f}" for role, ms in run.cpu_ms.items())
        + (f", RSS {memory[0]:.0f} MB" if memory else ""),
        file=sys.stderr,
    )


def usage_rows(dsn: str, operation_id: str) -> tuple[int, int]:
    """(all, failed) rows of llm_usage_logs with this operation_id, once requests still in flight
    have been written."""
    counts: tuple[int, int] | None = None
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select count(*), count(*) filter (where error_message is not null) from public.llm_usage_logs "
                "where operation_id = %s",
                (operation_id,),
            ).fetchone()
            assert row is not None
            if row == counts:
                return counts
            counts = (int(row[0]), int(row[1]))
            time.sleep(0.5)


async def client_cpu(transport: str, settings: Settings, url: str, body: dict[str, Any]) -> ClientCpu:
    """CPU this process spends per POST (the fake runs elsewhere): what the gateway's dispatch does
    with the client, a JSON body out and the response read back."""
    headers = {"authorization": f"Bearer {PROVIDER_KEY}", "accept": "application/json"}
    async with AsyncExitStack() as stack:
        if transport == RAW_AIOHTTP:
            session = await stack.enter_async_context(aiohttp.ClientSession())

            async def post() -> None:
                async with session.post(url, headers=headers, json=body) as response:
                    await response.json()
        else:
            client = await stack.enter_async_context(
                build_http_client(settings, aiohttp_transport=transport == "aiohttp")
            )

            async def post() -> None:
                (await client.post(url, headers=headers, json=body)).json()

        samples = []
        for call in range(CLIENT_WARMUP + CLIENT_CALLS):
            started_at = time.process_time()
            await post()
            if call >= CLIENT_WARMUP:
                samples.append((time.process_time() - started_at) * 1000)
    result = ClientCpu(transport, statistics.median(samples), statistics.fmean(samples))
    print(f"client CPU ({transport}): median {result.median_ms:.3f}, mean {result.mean_ms:.3f} ms", file=sys.stderr)
    return result


def profile(target: Target, seconds: int, logs: Path) -> Profile:
    """py-spy samples of the worker under 20 connections (a run of its own: sampling slows it)."""
    pid = target.pids.gateway
    assert pid is not None
    output = logs / "py-spy.txt"
    argv = [
        str(shutil.which("py-spy")),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "raw",
        "--full-filenames",
        "--nonblocking",
        "--output",
        str(output),
    ]
    with (logs / "py-spy.log").open("wb") as log:
        spy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            before = sum(process_cpu(pid))
            load = wrk(target, max(CONNECTIONS), seconds)
            after = sum(process_cpu(pid))
            spy.wait(30)
        finally:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
    stacks = []
    for line in output.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        stacks.append((stack.split(";"), int(samples)))
    total = sum(count for _, count in stacks)
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        packages[package(frames[-1])] += count
        leaves[frames[-1]] += count
        # Per function, whatever line it was at; the process's entry point (gateway/__main__.py) is
        # under every stack and says nothing.
        for function in {short(f, line=False) for f in frames if package(f) == "gateway" and "__main__" not in f}:
            inclusive[function] += count
    return Profile(
        samples=total,
        active=total / (PROFILE_RATE * seconds),
        cpu_ms=(after - before) * 1000 / max(load.requests, 1),
        by_package=[(name, n / total) for name, n in packages.most_common()],
        top_self=[(short(name), n / total) for name, n in leaves.most_common(TOP)],
        gateway_inclusive=inclusive.most_common(TOP),
    )


def frame_path(frame: str) -> tuple[str, Path, str]:
    """py-spy's `function (path:line)` as (function, path, line)."""
    name, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    return name, Path(path), line


def package(frame: str) -> str:
    """The top-level package a frame's code belongs to: `aiohttp`, `gateway`, `asyncio`, ..."""
    _, path, _ = frame_path(frame)
    for base in (*SITE_PACKAGES, ROOT, STDLIB):
        if path.is_relative_to(base):
            return path.relative_to(base).parts[0].removesuffix(".py")
    return str(path) if path.name else "(no file)"


def short(frame: str, line: bool = True) -> str:
    """`function (/…/site-packages/pkg/mod.py:12)` → `function (pkg/mod.py:12)`."""
    name, path, number = frame_path(frame)
    for base in (*SITE_PACKAGES, ROOT, STDLIB):
        if path.is_relative_to(base):
            path = path.relative_to(base)
            break
    if not path.name:
        return "(no function or file)"
    return f"{name} ({path}{':' + number if line else ''})"


# --- report ---------------------------------------------------------------------------------


def layer_rows(prof: Profile) -> list[str]:
    layers: dict[str, list[tuple[str, float]]] = {name: [] for name in (*LAYERS.values(), "other")}
    for name, share in prof.by_package:
        layers[LAYERS.get(name, "other")].append((name, share))
    rows = []
    for layer, members in sorted(layers.items(), key=lambda item: -sum(share for _, share in item[1])):
        total = sum(share for _, share in members)
        shown = ", ".join(f"{name} {share:.1%}" for name, share in members[:6]) + (", ..." if len(members) > 6 else "")
        rows.append(f"| {layer} | {shown} | {total:.1%} | {total * prof.cpu_ms:.2f} |")
    return rows


def pick(runs: list[Run], target: str, transport: str, connections: int) -> Run:
    return next(r for r in runs if (r.target, r.transport, r.connections) == (target, transport, connections))


def verdicts(runs: list[Run]) -> tuple[list[str], float]:
    gateway_1, direct_1 = pick(runs, "gateway", "aiohttp", 1), pick(runs, "direct", "-", 1)
    overhead = gateway_1.load.p50_ms - direct_1.load.p50_ms
    busy = pick(runs, "gateway", "aiohttp", 20)
    rps = busy.load.rps
    cpu = {role: sum(busy.cpu_ms.get(role, (0.0, 0.0))) for role in ROLES}
    others = cpu["postgres"] + cpu["fake"] + cpu["wrk"]
    single = {role: sum(gateway_1.cpu_ms.get(role, (0.0, 0.0))) for role in ROLES}
    peak = max(r.memory[1] for r in runs if r.transport == "aiohttp" and r.memory)
    overhead_met, rps_met, rss_met = overhead <= TARGET_OVERHEAD_P50_MS, rps >= TARGET_RPS, peak <= TARGET_RSS_MB
    lines = [
        f"- Gateway overhead p50 at 1 connection ≤ {TARGET_OVERHEAD_P50_MS:g} ms: "
        + ("met" if overhead_met else f"**missed by {overhead - TARGET_OVERHEAD_P50_MS:.2f} ms**")
        + f", {overhead:.2f} ms (gateway p50 {gateway_1.load.p50_ms:.2f} - direct p50 {direct_1.load.p50_ms:.2f} ms).",
        f"- ≥ {TARGET_RPS} req/s at 20 connections: "
        + ("met" if rps_met else f"**missed by {TARGET_RPS - rps:,.0f} req/s**")
        + f", {rps:,.0f} req/s ({rps / TARGET_RPS:.0%} of the target).",
        f"- RSS ≤ {TARGET_RSS_MB} MB per worker: "
        + ("met" if rss_met else f"**missed by {peak - TARGET_RSS_MB:.0f} MB**")
        + f", peak (VmHWM) {peak:.0f} MB over all runs of the gateway as shipped.",
        "",
        # The budget the throughput target implies on this machine, against what each process spent.
        f"At {TARGET_RPS} req/s, {os.cpu_count()} CPUs leave {(os.cpu_count() or 1) * 1000 / TARGET_RPS:.2f} ms "
        f"of CPU per request for everything on the machine. At 20 connections the gateway worker spent "
        f"{cpu['gateway']:.2f} ms per request, PostgreSQL {cpu['postgres']:.2f}, the fake {cpu['fake']:.2f} and "
        f"wrk {cpu['wrk']:.2f} ({sum(cpu.values()):.2f} ms in all). The worker is one thread: at "
        f"{cpu['gateway']:.2f} ms per request it cannot serve more than {1000 / cpu['gateway']:,.0f} req/s, and "
        f"PostgreSQL, the fake and wrk alone need {others * TARGET_RPS / 1000:.2f} CPUs at {TARGET_RPS} req/s.",
        "",
        # With one connection nothing overlaps, so the latency is the CPU along the path.
        f"At 1 connection each request's steps run one after another: the worker's {single['gateway']:.2f} ms, "
        f"PostgreSQL's {single['postgres']:.2f} ms (two round trips: configuration with the key, usage row) and the "
        f"fake's {single['fake']:.2f} ms of CPU add up to {sum(single.values()) - single['wrk']:.2f} ms, against a "
        f"p50 of {gateway_1.load.p50_ms:.2f} ms.",
        "",
        *_bounds(runs, direct_1),
    ]
    return lines, overhead


def _bounds(runs: list[Run], direct_1: Run) -> list[str]:
    """The opt-in cache and the bare framework against the same targets."""
    cached_1, cached_20 = pick(runs, "gateway", CACHED, 1), pick(runs, "gateway", CACHED, 20)
    floor_1, floor_20 = pick(runs, "floor", "-", 1), pick(runs, "floor", "-", 20)
    floor_cpu = sum(floor_20.cpu_ms["gateway"])
    return [
        f"With `GATEWAY_CONFIG_CACHE_SECONDS={CACHE_SECONDS}` (off by default: changes may then take that long to "
        "apply), the configuration round trip is skipped for repeated calls: overhead p50 "
        f"{cached_1.load.p50_ms - direct_1.load.p50_ms:.2f} ms at 1 connection, {cached_20.load.rps:,.0f} req/s at "
        f"20 connections ({cached_20.load.rps / TARGET_RPS:.0%} of the target), the worker at "
        f"{sum(cached_20.cpu_ms['gateway']):.2f} ms and PostgreSQL at {sum(cached_20.cpu_ms['postgres']):.2f} ms of "
        "CPU per request (one group-committed usage insert).",
        "",
        "The floor (`bench.framework_floor`: the same Litestar, uvicorn and provider client, no token check, no "
        f"database, no usage row) adds {floor_1.load.p50_ms - direct_1.load.p50_ms:.2f} ms p50 at 1 connection and "
        f"serves {floor_20.load.rps:,.0f} req/s at 20 connections ({floor_20.load.rps / TARGET_RPS:.0%} of the "
        f"target), its worker at {floor_cpu:.2f} ms of CPU per request: on this machine no gateway on this stack "
        "reaches more than that, whatever its own code does.",
    ]


def versions() -> str:
    packages = ("litestar", "uvicorn", "httpx", "httpcore", "aiohttp", "httpx-aiohttp", "psycopg", "pyjwt")
    found = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
    # uvicorn's defaults pick uvloop and httptools when they are installed.
    loop = "uvloop" if util.find_spec("uvloop") else "asyncio (no uvloop)"
    parser = "httptools" if util.find_spec("httptools") else "h11 (no httptools)"
    return f"Python {platform.python_version()}; {found}; uvicorn serves with {loop} and {parser}"


def ms(cpu: tuple[float, float] | None, split: bool = False) -> str:
    if cpu is None:
        return "-"
    return f"{sum(cpu):.2f} ({cpu[0]:.2f} + {cpu[1]:.2f})" if split else f"{sum(cpu):.2f}"


def report(
    runs: list[Run],
    billing: list[Billing],
    clients: list[ClientCpu],
    prof: Profile | None,
    facts: dict[str, str],
    args: argparse.Namespace,
) -> str:
    command = "python -m bench.gateway_load"
    if (args.rounds, args.duration, args.warmup) != (DEFAULT_ROUNDS, DEFAULT_DURATION, DEFAULT_WARMUP):
        command += f" --rounds {args.rounds} --duration {args.duration} --warmup {args.warmup}"
    if args.no_profile:
        command += " --no-profile"
    cpus = os.cpu_count() or 1
    target_lines, overhead = verdicts(runs)
    lines = [
        "# Gateway load",
        "",
        f"Command (from the repository root, wrk and py-spy installed): `{command}`, {facts['runtime']} end to end.",
        "",
        f"- Machine: {cpus} CPUs (`nproc`), {facts['cpu']}, {platform.system()} {platform.machine()}, shared with "
        f"other work; load average {facts['load_before']} before the run, {facts['load_after']} after (1, 5, "
        "15 min). wrk, the fake provider, the gateway and PostgreSQL all run on these CPUs.",
        f"- Software: {versions()}; {facts['postgres']}, fsync and synchronous_commit off (a usage row's "
        "commit costs less than on durable storage).",
        "- Load: wrk 4.1, one thread, keep-alive connections, the same request every time. "
        f"{args.rounds} rounds; each runs every target at 1, then at 20 connections, each run a {args.warmup} s "
        f"warm-up and {args.duration} s measured, so all targets share the machine's ups and downs. Per row: "
        "req/s over all rounds (and the slowest and fastest round), p50/p99 the medians of the rounds' "
        "(wrk's percentiles).",
        "- direct: `POST /openai/v1/chat/completions` on the fake provider (`python -m tests.fakes.providers`, "
        f"aiohttp, one process), body `{{model: {MODEL}, messages: [one user turn]}}`, bearer key.",
        "- gateway: `POST /functions/v1/execute-llm` on `python -m gateway` (one uvicorn worker, "
        "`DATABASE_URL` direct Postgres with the default pool of 10, `GATEWAY_LOG_LEVEL=warning`, so no access "
        "log line per request), body `{processor_id: <Invoice triage>, prompt}` as the seed's demo admin "
        "(HS256 token). Full path per request: JWT check (the verified-token cache hits after the first), "
        "`get_effective_llm_config`, the organization's openai key from Vault (api_key_source "
        f"`{facts['key_source']}`), the call to the same fake, the committed `llm_usage_logs` row.",
        "- variant: `aiohttp` is the gateway as shipped (`build_http_client`: httpx API over httpx-aiohttp); "
        "`httpx` is the same app given an `httpx.AsyncClient` with the same limits and timeouts on httpx's "
        "own transport (httpcore), through `create_app(settings, http_client=...)`; "
        f"`{CACHED}` is the gateway as shipped with `GATEWAY_CONFIG_CACHE_SECONDS={CACHE_SECONDS}`. All run side "
        "by side, each in its own process; the ones not under load idle.",
        "- floor: `bench.framework_floor` on uvicorn (one worker), `POST /complete {prompt}`: the same framework "
        "and provider client posting the same chat completion to the same fake, with no token check, no "
        "database and no usage row.",
        "- RSS: the gateway worker's VmRSS after its last run, and its peak (VmHWM).",
        "",
        "| target | variant | connections | req/s | rounds' req/s | p50 (ms) | p99 (ms) | errors | RSS / peak (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        load, memory, (slowest, fastest) = r.load, r.memory, r.rps_range
        lines.append(
            f"| {r.target} | {r.transport} | {r.connections} | {load.rps:,.0f} | {slowest:,.0f} to {fastest:,.0f} "
            f"| {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.socket_errors + load.status_errors} "
            f"| {f'{memory[0]:.0f} / {memory[1]:.0f}' if memory else '-'} |"
        )
    lines += [
        "",
        f"Gateway overhead p50 at 1 connection (gateway - direct, as shipped): **{overhead:.2f} ms**.",
        "",
        "## Targets",
        "",
        *target_lines,
        "",
        "## CPU per request",
        "",
        "CPU time each process spent during the measured run, per request, from /proc (gateway: user + system). "
        f"Machine: busy CPUs of {cpus} on average (/proc/stat); other: the part not spent by these processes "
        "(other work on the shared machine, interrupts, this script).",
        "",
        "| target | variant | connections | gateway or floor worker (ms) | fake (ms) | postgres (ms) | wrk (ms) "
        "| machine busy (CPUs) | other (CPUs) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.target} | {r.transport} | {r.connections} | {ms(r.cpu_ms.get('gateway'), split=True)} "
            f"| {ms(r.cpu_ms.get('fake'))} | {ms(r.cpu_ms.get('postgres'))} | {ms(r.cpu_ms.get('wrk'))} "
            f"| {r.machine_cpus:.2f} | {r.other_cpus:.2f} |"
        )

    shipped = {r.connections: r for r in runs if (r.target, r.transport) == ("gateway", "aiohttp")}
    lines += [
        "",
        "## Against LiteLLM's proxy",
        "",
        "The issue's figures for LiteLLM 1.108 (one worker, no database, so no key lookup and no usage row) on "
        "this machine class, next to the gateway as shipped doing the full path:",
        "",
        "| connections | LiteLLM req/s | gateway req/s | LiteLLM p50 (ms) | gateway p50 (ms) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for connections, (litellm_rps, litellm_p50) in LITELLM.items():
        run = shipped[connections]
        ratio = f" ({run.load.rps / litellm_rps:.1f}x)" if litellm_rps else ""
        lines.append(
            f"| {connections} | {litellm_rps or '-'} | {run.load.rps:,.0f}{ratio} | {litellm_p50} "
            f"| {run.load.p50_ms:.2f} |"
        )

    by_transport = {c.transport: c for c in clients}
    gateway_runs = {(r.transport, r.connections): r for r in runs if r.target == "gateway"}
    lines += [
        "",
        "## Transport",
        "",
        f"Client CPU per request, in isolation: {CLIENT_CALLS:,} sequential POSTs to the fake (after "
        f"{CLIENT_WARMUP} warm-up) from one asyncio process, `time.process_time()` around each "
        "`client.post(...)` plus `response.json()`; the fake runs in its own process, so this is the "
        "client's CPU alone. Whole gateway: from the tables above. The reference row is aiohttp's own "
        "`ClientSession` doing the same (`session.post(...)`, `await response.json()`), which the gateway "
        "does not offer.",
        "",
        "| transport | client CPU/req median (ms) | mean (ms) | gateway CPU/req at 20 conn (ms) "
        "| gateway req/s at 20 conn | gateway p50 at 1 conn (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in TRANSPORTS:
        c, busy, single = by_transport[name], gateway_runs[(name, 20)], gateway_runs[(name, 1)]
        lines.append(
            f"| {name} | {c.median_ms:.3f} | {c.mean_ms:.3f} | {ms(busy.cpu_ms.get('gateway'))} "
            f"| {busy.load.rps:,.0f} | {single.load.p50_ms:.2f} |"
        )
    aio, hx, raw = by_transport["aiohttp"], by_transport["httpx"], by_transport[RAW_AIOHTTP]
    lines.append(f"| {RAW_AIOHTTP} (reference) | {raw.median_ms:.3f} | {raw.mean_ms:.3f} | - | - | - |")
    chosen = "aiohttp" if aio.mean_ms <= hx.mean_ms else "httpx"
    faster = gateway_runs[("aiohttp", 20)].load.rps / gateway_runs[("httpx", 20)].load.rps
    aio_1, hx_1 = gateway_runs[("aiohttp", 1)], gateway_runs[("httpx", 1)]
    # Rounds whose req/s ranges overlap cannot tell the two apart on this shared machine.
    overlap = aio_1.rps_range[0] <= hx_1.rps_range[1] and hx_1.rps_range[0] <= aio_1.rps_range[1]
    at_one = (
        f"At 1 connection the gateway's p50 was {aio_1.load.p50_ms:.2f} ms with aiohttp and {hx_1.load.p50_ms:.2f} "
        f"ms with httpx's transport; "
        + (
            "their rounds overlap, so this run cannot tell them apart there."
            if overlap
            else f"{'aiohttp' if aio_1.load.rps > hx_1.load.rps else 'httpx'} was faster in every round."
        )
    )
    lines += [
        "",
        f"Chosen: **{chosen}** (httpx-aiohttp under the httpx API, as `gateway/app.py` ships): it costs less CPU "
        f"per request. httpx's own transport costs {hx.mean_ms / aio.mean_ms:.1f}x the client CPU "
        f"({hx.mean_ms:.3f} vs {aio.mean_ms:.3f} ms mean per request), and the gateway with aiohttp serves "
        f"{faster:.2f}x the requests per second of the gateway with httpx's transport at 20 connections. {at_one} "
        f"aiohttp's own `ClientSession` without the httpx API on top ({raw.mean_ms:.3f} ms) would save another "
        f"{aio.mean_ms - raw.mean_ms:.2f} ms per request.",
        "",
        "## Billing check",
        "",
    ]
    for b in billing:
        extra = b.rows - b.completed
        ok = b.failed_rows == 0 and 0 <= extra <= b.max_in_flight
        lines.append(
            f"- {b.transport}: {b.rows:,} `llm_usage_logs` rows ({b.failed_rows} with an error) for {b.completed:,} "
            f"successful responses wrk received over {b.wrk_runs} runs (warm-ups included); the {extra} more rows "
            f"are the requests in flight when wrk stopped (at most {b.max_in_flight}): "
            + ("every completed call is billed." if ok else "**MISMATCH: a completed call is unbilled.**")
        )

    if prof is not None:
        lines += [
            "",
            "## Where the gateway's CPU goes",
            "",
            f"py-spy ({PROFILE_RATE} Hz, `--nonblocking`) on the worker during a separate {PROFILE_SECONDS} s run at "
            f"{max(CONNECTIONS)} connections, as shipped, at {prof.cpu_ms:.2f} ms of worker CPU per request. "
            f"{prof.samples:,} samples found the worker's thread runnable, {prof.active:.0%} of the run; py-spy "
            "counts a thread waiting for a CPU as running, so calls that wake another process (socket writes to "
            "PostgreSQL, the fake, wrk) are overcounted on this busy machine. Time in C extensions and system "
            "calls counts to the Python frame that made them. ms/req is the share times the worker's CPU per "
            "request: an estimate.",
            "",
            "By layer, from the package of the innermost Python frame:",
            "",
            "| layer | packages (share) | share | ms/req |",
            "|---|---|---:|---:|",
            *layer_rows(prof),
            "",
            f"Top {TOP} functions by own time:",
            "",
            "| function | share | ms/req |",
            "|---|---:|---:|",
            *(f"| `{name}` | {share:.1%} | {share * prof.cpu_ms:.2f} |" for name, share in prof.top_self),
            "",
            "The gateway's own functions, including what they call (up to their next await):",
            "",
            "| function | share | ms/req |",
            "|---|---:|---:|",
            *(
                f"| `{name}` | {n / prof.samples:.1%} | {n / prof.samples * prof.cpu_ms:.2f} |"
                for name, n in prof.gateway_inclusive
            ),
        ]
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------


def prepare(url: str, token: str) -> str:
    """Store the organization's openai key (through the gateway, as an admin would) and check one
    call end to end; the call's api_key_source."""
    auth = {"authorization": f"Bearer {token}"}
    stored = httpx.post(
        f"{url}/functions/v1/manage-llm-keys",
        headers=auth,
        json={"action": "set", "provider": "openai", "api_key": ORG_KEY},
    )
    stored.raise_for_status()
    answer = httpx.post(
        f"{url}/functions/v1/execute-llm", headers=auth, json={"processor_id": DEMO_PROCESSOR, "prompt": PROMPT}
    )
    answer.raise_for_status()
    body = answer.json()
    if (body["provider"], body["config"]["api_key_source"]) != ("openai", "organization"):
        raise RuntimeError(f"unexpected configuration: {body['provider']}, {body['config']}")
    return str(body["config"]["api_key_source"])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def demo_token(secret: str) -> str:
    """An access token for the seed's demo admin, shaped like Supabase Auth's."""
    now = int(time.time())
    claims = {
        "sub": DEMO_ADMIN,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "app_metadata": {"organization_id": DEMO_ORG},
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def base_environ() -> dict[str, str]:
    """This environment without anything that would configure the gateway differently."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SUPABASE_", "DATABASE_", "GATEWAY_", "PROVIDER_"))
        and not name.endswith(("_API_KEY", "_BASE_URL"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds over all targets")
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="warm-up seconds before each run")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the gateway worker")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the Markdown report")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if not args.no_profile and shutil.which("py-spy") is None:
        sys.exit("py-spy is not on PATH: pip install py-spy (or pass --no-profile)")
    # SIGTERM as well as Ctrl-C unwinds the `with` blocks, which stop everything started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started_at = time.monotonic()
    load_before = ", ".join(f"{load:.1f}" for load in os.getloadavg())
    billing: list[Billing] = []
    prof: Profile | None = None
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-load-")))
        print("starting PostgreSQL and building the database (migrations + seed)", file=sys.stderr)
        cluster = stack.enter_context(running_cluster())
        build_database(cluster.host, cluster.port, cluster.user, DBNAME, legacy_privileges=False)
        admin_dsn = conninfo(cluster.host, cluster.port, cluster.user, DBNAME)
        with psycopg.connect(admin_dsn) as conn:
            postgres_version = str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]
        postmaster = int((Path(cluster.datadir) / "postmaster.pid").read_text().split()[0])

        fake_port = free_port()
        fake_argv = [sys.executable, "-m", "tests.fakes.providers", "--port", str(fake_port)]
        fake = stack.enter_context(started("fake", fake_argv, dict(os.environ), logs))
        wait_until(lambda: accepts(fake_port), fake, logs / "fake.log")
        fake_url = f"http://{HOST}:{fake_port}/openai/v1"

        secret = secrets.token_urlsafe(48)
        token = demo_token(secret)
        environ = base_environ() | {
            "DATABASE_URL": f"postgresql://postgres@{cluster.host}:{cluster.port}/{DBNAME}",
            "SUPABASE_JWT_SECRET": secret,
            "OPENAI_API_KEY": PROVIDER_KEY,
            "OPENAI_BASE_URL": fake_url,
            "GATEWAY_HOST": HOST,
            "GATEWAY_LOG_LEVEL": "warning",
        }
        direct_body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
        direct_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {PROVIDER_KEY}"}
        targets = [
            Target(
                "direct",
                "-",
                f"{fake_url}/chat/completions",
                write_wrk_script(logs / "direct.lua", direct_body, direct_headers | {"Accept": "application/json"}),
                Pids(fake.pid, postmaster),
            )
        ]
        key_source = ""
        for number, variant in enumerate(VARIANTS):
            port = free_port()
            argv, env = gateway_argv(variant, port), environ | {"GATEWAY_PORT": str(port)}
            if variant == CACHED:
                env["GATEWAY_CONFIG_CACHE_SECONDS"] = CACHE_SECONDS
            gateway = stack.enter_context(started(f"gateway-{number}", argv, env, logs))
            url = f"http://{HOST}:{port}"
            wait_until(partial(answers_ready, url), gateway, logs / f"gateway-{number}.log")
            key_source = prepare(url, token)
            # The operation_id tells each gateway's usage rows apart.
            body = {"processor_id": DEMO_PROCESSOR, "prompt": PROMPT, "operation_id": f"bench-{variant}"}
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            script = write_wrk_script(logs / f"gateway-{number}.lua", body, headers)
            targets.append(
                Target(
                    "gateway",
                    variant,
                    f"{url}/functions/v1/execute-llm",
                    script,
                    Pids(fake.pid, postmaster, gateway.pid),
                )
            )
        port = free_port()
        floor_env = base_environ() | {"FLOOR_PROVIDER_URL": fake_url, "FLOOR_PROVIDER_KEY": PROVIDER_KEY}
        floor = stack.enter_context(started("floor", uvicorn_argv("bench.framework_floor:app", port), floor_env, logs))
        wait_until(lambda: accepts(port), floor, logs / "floor.log")
        floor_script = write_wrk_script(logs / "floor.lua", {"prompt": PROMPT}, {"Content-Type": "application/json"})
        targets.append(
            Target("floor", "-", f"http://{HOST}:{port}/complete", floor_script, Pids(fake.pid, postmaster, floor.pid))
        )

        # Round by round, every target at each number of connections in turn, so that drift in the
        # shared machine's other work hits all targets alike.
        rounds: defaultdict[tuple[Target, int], list[Round]] = defaultdict(list)
        for number in range(args.rounds):
            for connections in CONNECTIONS:
                for target in targets:
                    rounds[(target, connections)].append(measure(target, connections, args))
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
        runs = [Run(t.name, t.transport, c, rounds[(t, c)]) for t in targets for c in CONNECTIONS]
        for run in runs:
            log_run(run)

        for target in (t for t in targets if t.name == "gateway"):
            rows, failed = usage_rows(admin_dsn, f"bench-{target.transport}")
            mine = [r for r in runs if (r.target, r.transport) == ("gateway", target.transport)]
            billing.append(
                Billing(
                    target.transport,
                    rows=rows,
                    failed_rows=failed,
                    completed=sum(r.completed for r in mine),
                    wrk_runs=sum(2 * len(r.rounds) for r in mine),
                    # wrk drops the responses in flight when a run ends; the gateway still bills them.
                    max_in_flight=sum(2 * r.connections * len(r.rounds) for r in mine),
                )
            )
        if not args.no_profile:
            print("profiling the gateway worker with py-spy", file=sys.stderr)
            prof = profile(targets[1], PROFILE_SECONDS, logs)  # the gateway as shipped

        settings = Settings.from_env(environ)
        clients = [
            asyncio.run(client_cpu(name, settings, f"{fake_url}/chat/completions", direct_body))
            for name in (*TRANSPORTS, RAW_AIOHTTP)
        ]
        facts = {
            "cpu": cpu_model(),
            "postgres": f"PostgreSQL {postgres_version}",
            "key_source": key_source,
            "load_before": load_before,
            "load_after": ", ".join(f"{load:.1f}" for load in os.getloadavg()),
            "runtime": f"{(time.monotonic() - started_at) / 60:.1f} min",
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report(runs, billing, clients, prof, facts, args))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the `with` blocks have stopped everything by now
        sys.exit("interrupted; everything this benchmark started is stopped")
