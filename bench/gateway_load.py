"""Throughput, latency, CPU and memory of the gateway's execute-llm under load, next to the same
load straight at the provider and through a bare Python forwarder, with the server and the
provider client choices measured beside it.

    python -m bench.gateway_load [--rounds N] [--duration S] [--warmup S] [--no-profile] [--output PATH]

One run, everything on 127.0.0.1: a throwaway PostgreSQL 15 (migrations + seed), the fake
OpenAI-compatible provider (`python -m tests.fakes.providers`), `python -m gateway` as shipped
(one uvicorn worker on uvloop + httptools, aiohttp's client, the configuration cache with its
change listener), the same app on uvicorn's asyncio + h11, on granian, and with the cache off,
`bench.bare_forwarder` (aiohttp.web + uvloop forwarding to the fake: the Python floor) and
`bench.framework_floor` (Litestar doing none of the gateway's work), each in its own process. wrk
sends the same chat completion straight to the fake, through the floors and through each
gateway's execute-llm (JWT, effective configuration, the organization's Vault key, provider call,
committed usage row), at 1 and 20 connections, in interleaved rounds. Only 2xx answers count;
any error or a usage-row mismatch fails the run (exit status 1, and the report says so).
Needs wrk (`apt-get install -y wrk`) and `pip install -e .[bench]` (granian; py-spy for the
profile of the gateway worker).
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
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from httpx_aiohttp import AiohttpTransport

from devstack.database import build_database, conninfo
from devstack.postgres import free_port, running_cluster
from gateway.http_client import build_http_client
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
# Gateway processes side by side: the one as shipped first (the profile's), then its variants.
SHIPPED = "as shipped"
H11 = "uvicorn asyncio + h11"
GRANIAN = "granian"
NO_CACHE = "config cache off"
VARIANTS = (SHIPPED, H11, GRANIAN, NO_CACHE)
# The provider clients measured alone: the gateway's, then the two with httpx's API.
CLIENTS = ("aiohttp ClientSession", "httpx API over aiohttp", "httpx")
# httpx's API is kept only if it costs at most this much more CPU per call than a ClientSession.
CLIENT_TOLERANCE_MS = 0.1
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
TARGET_SHARE_OF_FORWARDER = 0.40
TARGET_RSS_MB = 90

# Per-request CPU of each provider client alone, in this process: sequential POSTs to the fake.
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
    "granian": _SERVER,
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
    variant: str
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
        """2xx answers: the only ones that count."""
        return self.requests - self.status_errors

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds


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
    variant: str
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
    variant: str
    rows: int
    failed_rows: int
    completed: int
    wrk_runs: int
    max_in_flight: int  # responses wrk may have dropped: its connections, summed over its runs

    @property
    def ok(self) -> bool:
        return self.failed_rows == 0 and 0 <= self.rows - self.completed <= self.max_in_flight


@dataclass(frozen=True)
class ClientCpu:
    client: str
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
    """The same app (`gateway.__main__:app_from_env`, one worker) on each server measured."""
    if variant == H11:
        return [*uvicorn_argv("gateway.__main__:app_from_env", port), "--loop", "asyncio", "--http", "h11"]
    if variant == GRANIAN:
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop"),
            *("--workers", "1", "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning"),
            "gateway.__main__:app_from_env",
        ]
    return [sys.executable, "-m", "gateway"]


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


def worker_of(variant: str, pid: int) -> int:
    """The process serving requests: granian runs its worker as a child of the process started."""
    if variant != GRANIAN:
        return pid
    deadline = time.monotonic() + 30
    while not (workers := children_of(pid)):
        if time.monotonic() > deadline:
            raise RuntimeError("granian started no worker")
        time.sleep(0.1)
    [worker] = workers
    return worker


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
        f"{run.target} ({run.variant}) c={run.connections}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
        f"p99 {load.p99_ms:.2f} ms, errors {load.errors}, CPU ms/req "
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


async def client_cpu(client: str, settings: Settings, url: str, body: dict[str, Any]) -> ClientCpu:
    """CPU this process spends per POST (the fake runs elsewhere): what the gateway's dispatch does
    with the client, a JSON body out and the response read back."""
    headers = {"authorization": f"Bearer {PROVIDER_KEY}", "accept": "application/json"}
    async with AsyncExitStack() as stack:
        if client == CLIENTS[0]:
            session = await stack.enter_async_context(build_http_client(settings))

            async def post() -> None:
                async with session.post(url, headers=headers, json=body) as response:
                    await response.json()
        else:
            transport = AiohttpTransport() if client == CLIENTS[1] else None
            httpx_client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, timeout=30))

            async def post() -> None:
                (await httpx_client.post(url, headers=headers, json=body)).json()

        samples = []
        for call in range(CLIENT_WARMUP + CLIENT_CALLS):
            started_at = time.process_time()
            await post()
            if call >= CLIENT_WARMUP:
                samples.append((time.process_time() - started_at) * 1000)
    result = ClientCpu(client, statistics.median(samples), statistics.fmean(samples))
    print(f"client CPU ({client}): median {result.median_ms:.3f}, mean {result.mean_ms:.3f} ms", file=sys.stderr)
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


def pick(runs: list[Run], target: str, variant: str, connections: int) -> Run:
    return next(r for r in runs if (r.target, r.variant, r.connections) == (target, variant, connections))


def failures(runs: list[Run], billing: list[Billing]) -> list[str]:
    """What makes this run's figures worthless: any error answer, any unbilled call."""
    found = [
        f"{r.target} ({r.variant}) at {r.connections} connections: {r.load.status_errors} non-2xx answers, "
        f"{r.load.socket_errors} socket errors"
        for r in runs
        if r.load.errors or any(round_.warmup.errors for round_ in r.rounds)
    ]
    found += [f"gateway ({b.variant}): usage rows do not match the calls answered" for b in billing if not b.ok]
    return found


def verdicts(runs: list[Run]) -> tuple[list[str], float]:
    gateway_1, direct_1 = pick(runs, "gateway", SHIPPED, 1), pick(runs, "direct", "-", 1)
    overhead = gateway_1.load.p50_ms - direct_1.load.p50_ms
    busy, forwarder = pick(runs, "gateway", SHIPPED, 20), pick(runs, "forwarder", "-", 20)
    share = busy.load.rps / forwarder.load.rps
    cpu = {role: sum(busy.cpu_ms.get(role, (0.0, 0.0))) for role in ROLES}
    forwarder_cpu = sum(forwarder.cpu_ms["gateway"])
    single = {role: sum(gateway_1.cpu_ms.get(role, (0.0, 0.0))) for role in ROLES}
    peak = max(r.memory[1] for r in runs if (r.target, r.variant) == ("gateway", SHIPPED) and r.memory)
    overhead_met = overhead <= TARGET_OVERHEAD_P50_MS
    share_met, rss_met = share >= TARGET_SHARE_OF_FORWARDER, peak <= TARGET_RSS_MB
    lines = [
        f"- Gateway overhead p50 at 1 connection ≤ {TARGET_OVERHEAD_P50_MS:g} ms: "
        + ("met" if overhead_met else f"**missed by {overhead - TARGET_OVERHEAD_P50_MS:.2f} ms**")
        + f", {overhead:.2f} ms (gateway p50 {gateway_1.load.p50_ms:.2f} - direct p50 {direct_1.load.p50_ms:.2f} ms).",
        f"- ≥ {TARGET_SHARE_OF_FORWARDER:.0%} of the bare forwarder's req/s at 20 connections: "
        + ("met" if share_met else f"**missed by {TARGET_SHARE_OF_FORWARDER - share:.1%} of it**")
        + f", {busy.load.rps:,.0f} of {forwarder.load.rps:,.0f} req/s (**{share:.1%}**).",
        f"- Worker RSS ≤ {TARGET_RSS_MB} MB: "
        + ("met" if rss_met else f"**missed by {peak - TARGET_RSS_MB:.0f} MB**")
        + f", peak (VmHWM) {peak:.0f} MB over all runs of the gateway as shipped.",
        "",
        # Where the gap to the forwarder goes, per request, at 20 connections.
        f"At 20 connections the gateway worker spent {cpu['gateway']:.2f} ms of CPU per request against the "
        f"forwarder's {forwarder_cpu:.2f} ms, and PostgreSQL {cpu['postgres']:.2f} ms (the forwarder uses none); "
        f"the fake {cpu['fake']:.2f} and wrk {cpu['wrk']:.2f}. One worker is one thread: at {cpu['gateway']:.2f} ms "
        f"it cannot serve more than {1000 / cpu['gateway']:,.0f} req/s.",
        "",
        # With one connection nothing overlaps, so the latency is the CPU along the path.
        f"At 1 connection each request's steps run one after another: the worker's {single['gateway']:.2f} ms, "
        f"PostgreSQL's {single['postgres']:.2f} ms and the fake's {single['fake']:.2f} ms of CPU add up to "
        f"{sum(single.values()) - single['wrk']:.2f} ms, against a p50 of {gateway_1.load.p50_ms:.2f} ms.",
    ]
    return lines, overhead


def versions() -> str:
    packages = ("litestar", "uvicorn", "uvloop", "httptools", "granian", "aiohttp", "httpx", "psycopg", "pyjwt")
    return f"Python {platform.python_version()}; " + ", ".join(f"{p} {metadata.version(p)}" for p in packages)


def ms(cpu: tuple[float, float] | None, split: bool = False) -> str:
    if cpu is None:
        return "-"
    return f"{sum(cpu):.2f} ({cpu[0]:.2f} + {cpu[1]:.2f})" if split else f"{sum(cpu):.2f}"


def choices(runs: list[Run], clients: list[ClientCpu]) -> list[str]:
    """The server and the provider client, each against its alternatives, and what the cache buys."""
    gateway = {(r.variant, r.connections): r for r in runs if r.target == "gateway"}
    lines = [
        "## Server and event loop",
        "",
        "The same app (`gateway.__main__:app_from_env`, one worker, cache on) on each server, side by side:",
        "",
        "| server | req/s at 20 conn | worker CPU/req at 20 conn (ms) | p50 at 1 conn (ms) "
        "| rounds' req/s at 20 conn |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in (SHIPPED, H11, GRANIAN):
        busy, single = gateway[(variant, 20)], gateway[(variant, 1)]
        slowest, fastest = busy.rps_range
        name = "uvicorn uvloop + httptools (shipped)" if variant == SHIPPED else variant
        lines.append(
            f"| {name} | {busy.load.rps:,.0f} | {ms(busy.cpu_ms.get('gateway'))} | {single.load.p50_ms:.2f} "
            f"| {slowest:,.0f} to {fastest:,.0f} |"
        )
    cached, uncached = gateway[(SHIPPED, 20)], gateway[(NO_CACHE, 20)]
    by_name = {c.client: c for c in clients}
    chosen, *others = (by_name[name] for name in CLIENTS)
    lines += [
        "",
        "## Provider client",
        "",
        f"Client CPU per call, alone: {CLIENT_CALLS:,} sequential POSTs to the fake (after {CLIENT_WARMUP} warm-up) "
        "from one asyncio process, `time.process_time()` around each POST and the JSON read back; the fake runs "
        "in its own process, so this is the client's CPU alone. httpx's API is kept only within "
        f"{CLIENT_TOLERANCE_MS} ms of a plain `aiohttp.ClientSession`.",
        "",
        "| client | median (ms) | mean (ms) | more than the ClientSession (mean, ms) |",
        "|---|---:|---:|---:|",
        *(
            f"| {c.client} | {c.median_ms:.3f} | {c.mean_ms:.3f} | {c.mean_ms - chosen.mean_ms:+.3f} |"
            for c in (chosen, *others)
        ),
        "",
        "Shipped: the `aiohttp.ClientSession` (`gateway/http_client.py`)"
        + (
            f": httpx's API over aiohttp costs {others[0].mean_ms - chosen.mean_ms:.3f} ms more per call, past "
            f"the {CLIENT_TOLERANCE_MS} ms allowed."
            if others[0].mean_ms - chosen.mean_ms > CLIENT_TOLERANCE_MS
            else f". **In this run httpx's API over aiohttp was within {CLIENT_TOLERANCE_MS} ms**, which would "
            "allow keeping it."
        ),
        "",
        "## The configuration cache",
        "",
        f"As shipped (on, kept fresh by change notifications) against `GATEWAY_CONFIG_CACHE_SECONDS=0`: "
        f"{cached.load.rps:,.0f} against {uncached.load.rps:,.0f} req/s at 20 connections; PostgreSQL "
        f"{ms(cached.cpu_ms.get('postgres'))} against {ms(uncached.cpu_ms.get('postgres'))} ms of CPU per request; "
        f"p50 at 1 connection {gateway[(SHIPPED, 1)].load.p50_ms:.2f} against "
        f"{gateway[(NO_CACHE, 1)].load.p50_ms:.2f} ms.",
    ]
    return lines


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
    failed = failures(runs, billing)
    lines = [
        "# Gateway load",
        "",
        *(["**THIS RUN FAILED; its figures are not results:**", "", *(f"- {f}" for f in failed), ""] if failed else []),
        f"Command (from the repository root, wrk and `.[bench]` installed): `{command}`, {facts['runtime']} end "
        "to end.",
        "",
        f"- Machine: {cpus} CPUs (`nproc`), {facts['cpu']}, {platform.system()} {platform.machine()}, shared with "
        f"other work; load average {facts['load_before']} before the run, {facts['load_after']} after (1, 5, "
        "15 min). wrk, the fake provider, the gateway and PostgreSQL all run on these CPUs.",
        f"- Software: {versions()}; {facts['postgres']}, fsync and synchronous_commit off (a usage row's "
        "commit costs less than on durable storage).",
        "- Load: wrk 4.1, one thread, keep-alive connections, the same request every time. "
        f"{args.rounds} rounds; each runs every target at 1, then at 20 connections, each run a {args.warmup} s "
        f"warm-up and {args.duration} s measured, so all targets share the machine's ups and downs. Per row: "
        "req/s of 2xx answers over all rounds (and the slowest and fastest round), p50/p99 the medians of the "
        "rounds' (wrk's percentiles). Any non-2xx answer or socket error fails the run.",
        "- direct: `POST /openai/v1/chat/completions` on the fake provider (`python -m tests.fakes.providers`, "
        f"aiohttp, one process), body `{{model: {MODEL}, messages: [one user turn]}}`, bearer key.",
        "- forwarder: `bench.bare_forwarder`, `POST /complete {prompt}`: aiohttp.web on uvloop posting the same "
        "chat completion to the same fake with one `aiohttp.ClientSession`; no auth, no database. The Python floor.",
        "- gateway: `POST /functions/v1/execute-llm`, body `{processor_id: <Invoice triage>, prompt}` as the "
        "seed's demo admin (HS256 token), `DATABASE_URL` direct Postgres with the default pool of 10, "
        "`GATEWAY_LOG_LEVEL=warning`. Full path per request: JWT check (the verified-token cache hits after the "
        "first), the effective configuration and the organization's openai key from Vault (api_key_source "
        f"`{facts['key_source']}`; from the worker's cache after the first call), the call to the same fake, the "
        f"group-committed `llm_usage_logs` row. Variants: `{SHIPPED}` is `python -m gateway` with default "
        f"settings; `{H11}` and `{GRANIAN}` serve the same app with those servers; `{NO_CACHE}` is as shipped "
        "with `GATEWAY_CONFIG_CACHE_SECONDS=0`. All run side by side, each in its own process; the ones not under "
        "load idle.",
        "- floor: `bench.framework_floor` (Litestar on uvicorn uvloop + httptools, the gateway's client, "
        "`POST /complete {prompt}`): the gateway's framework doing none of its work.",
        "- RSS: the worker's VmRSS after its last run, and its peak (VmHWM).",
        "",
        "| target | variant | connections | req/s | rounds' req/s | p50 (ms) | p99 (ms) | errors | RSS / peak (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        load, memory, (slowest, fastest) = r.load, r.memory, r.rps_range
        lines.append(
            f"| {r.target} | {r.variant} | {r.connections} | {load.rps:,.0f} | {slowest:,.0f} to {fastest:,.0f} "
            f"| {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.errors} "
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
        "CPU time each process spent during the measured run, per request, from /proc (worker: user + system). "
        f"Machine: busy CPUs of {cpus} on average (/proc/stat); other: the part not spent by these processes "
        "(other work on the shared machine, interrupts, this script).",
        "",
        "| target | variant | connections | worker (ms) | fake (ms) | postgres (ms) | wrk (ms) "
        "| machine busy (CPUs) | other (CPUs) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.target} | {r.variant} | {r.connections} | {ms(r.cpu_ms.get('gateway'), split=True)} "
            f"| {ms(r.cpu_ms.get('fake'))} | {ms(r.cpu_ms.get('postgres'))} | {ms(r.cpu_ms.get('wrk'))} "
            f"| {r.machine_cpus:.2f} | {r.other_cpus:.2f} |"
        )
    lines += ["", *choices(runs, clients), "", "## Billing check", ""]
    for b in billing:
        lines.append(
            f"- {b.variant}: {b.rows:,} `llm_usage_logs` rows ({b.failed_rows} with an error) for {b.completed:,} "
            f"successful responses wrk received over {b.wrk_runs} runs (warm-ups included); the "
            f"{b.rows - b.completed} more rows are the requests in flight when wrk stopped (at most "
            f"{b.max_in_flight}): "
            + ("every completed call is billed." if b.ok else "**MISMATCH: a completed call is unbilled.**")
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


@dataclass(frozen=True)
class Served:
    """PostgreSQL (migrations + seed), the fake provider and `python -m gateway`, all running."""

    host: str  # PostgreSQL's
    port: int
    postmaster: int
    fake: subprocess.Popen[bytes]
    fake_url: str  # the fake's OpenAI base URL
    gateway: subprocess.Popen[bytes]
    url: str  # the gateway's
    secret: str  # SUPABASE_JWT_SECRET: sign the callers' tokens with it


def serve_gateway(stack: ExitStack, logs: Path, dbname: str) -> Served:
    """Start what the gateway needs, then the gateway with default settings (one worker, the
    fake as OpenAI); `stack` stops it all."""
    print("starting PostgreSQL and building the database (migrations + seed)", file=sys.stderr)
    cluster = stack.enter_context(running_cluster())
    build_database(cluster.host, cluster.port, cluster.user, dbname, legacy_privileges=False)
    postmaster = int((Path(cluster.datadir) / "postmaster.pid").read_text().split()[0])
    fake_port = free_port()
    fake_argv = [sys.executable, "-m", "tests.fakes.providers", "--port", str(fake_port)]
    fake = stack.enter_context(started("fake", fake_argv, dict(os.environ), logs))
    wait_until(lambda: accepts(fake_port), fake, logs / "fake.log")
    fake_url = f"http://{HOST}:{fake_port}/openai/v1"
    secret = secrets.token_urlsafe(48)
    port = free_port()
    env = base_environ() | {
        "DATABASE_URL": f"postgresql://postgres@{cluster.host}:{cluster.port}/{dbname}",
        "SUPABASE_JWT_SECRET": secret,
        "OPENAI_API_KEY": PROVIDER_KEY,
        "OPENAI_BASE_URL": fake_url,
        "GATEWAY_HOST": HOST,
        "GATEWAY_PORT": str(port),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    gateway = stack.enter_context(started("gateway", [sys.executable, "-m", "gateway"], env, logs))
    url = f"http://{HOST}:{port}"
    wait_until(partial(answers_ready, url), gateway, logs / "gateway.log")
    return Served(cluster.host, cluster.port, postmaster, fake, fake_url, gateway, url, secret)


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
            if variant == NO_CACHE:
                env["GATEWAY_CONFIG_CACHE_SECONDS"] = "0"
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
                    Pids(fake.pid, postmaster, worker_of(variant, gateway.pid)),
                )
            )
        port = free_port()
        forwarder_argv = [sys.executable, "-m", "bench.bare_forwarder", "--port", str(port)]
        forwarder_argv += ["--provider-url", fake_url, "--key", PROVIDER_KEY]
        forwarder = stack.enter_context(started("forwarder", forwarder_argv, base_environ(), logs))
        wait_until(lambda: accepts(port), forwarder, logs / "forwarder.log")
        prompt_script = write_wrk_script(logs / "prompt.lua", {"prompt": PROMPT}, {"Content-Type": "application/json"})
        targets.append(
            Target(
                "forwarder",
                "-",
                f"http://{HOST}:{port}/complete",
                prompt_script,
                Pids(fake.pid, postmaster, forwarder.pid),
            )
        )
        port = free_port()
        floor_env = base_environ() | {"FLOOR_PROVIDER_URL": fake_url, "FLOOR_PROVIDER_KEY": PROVIDER_KEY}
        floor_argv = [*uvicorn_argv("bench.framework_floor:app", port), "--loop", "uvloop", "--http", "httptools"]
        floor = stack.enter_context(started("floor", floor_argv, floor_env, logs))
        wait_until(lambda: accepts(port), floor, logs / "floor.log")
        targets.append(
            Target("floor", "-", f"http://{HOST}:{port}/complete", prompt_script, Pids(fake.pid, postmaster, floor.pid))
        )

        # Round by round, every target at each number of connections in turn, so that drift in the
        # shared machine's other work hits all targets alike.
        rounds: defaultdict[tuple[Target, int], list[Round]] = defaultdict(list)
        for number in range(args.rounds):
            for connections in CONNECTIONS:
                for target in targets:
                    rounds[(target, connections)].append(measure(target, connections, args))
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
        runs = [Run(t.name, t.variant, c, rounds[(t, c)]) for t in targets for c in CONNECTIONS]
        for run in runs:
            log_run(run)

        for target in (t for t in targets if t.name == "gateway"):
            rows, failed = usage_rows(admin_dsn, f"bench-{target.variant}")
            mine = [r for r in runs if (r.target, r.variant) == ("gateway", target.variant)]
            billing.append(
                Billing(
                    target.variant,
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
            asyncio.run(client_cpu(name, settings, f"{fake_url}/chat/completions", direct_body)) for name in CLIENTS
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
    if problems := failures(runs, billing):
        sys.exit("the run failed: " + "; ".join(problems))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the `with` blocks have stopped everything by now
        sys.exit("interrupted; everything this benchmark started is stopped")
