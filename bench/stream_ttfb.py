"""Time to first byte of a streamed completion: through the gateway (`execute-llm` with
"stream": true) against the fake provider's own stream, at 1 and 20 connections, in one run.

    python -m bench.stream_ttfb [--rounds N] [--duration S] [--output PATH]

Everything on 127.0.0.1: a throwaway PostgreSQL 15 (migrations + seed), the fake provider
(`python -m tests.fakes.providers`, OpenAI's chunk format), `python -m gateway` with default
settings. The client is aiohttp on this process's event loop, keep-alive connections, each
connection sending its next request when the previous stream ended. TTFB is from sending the
request to the first body byte (the gateway's first `event: delta`, the provider's first chunk).
Only complete streams count (the gateway's ending in `event: done`, the provider's in `[DONE]`);
any other answer fails the run (exit status 1, and the report says so at its top).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.gateway_load import (
    DEMO_PROCESSOR,
    MODEL,
    PROMPT,
    PROVIDER_KEY,
    cpu_model,
    demo_token,
    serve_gateway,
)

DBNAME = "bench_stream_ttfb"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "stream_ttfb.md"
DEFAULT_ROUNDS = 3
DEFAULT_DURATION = 5.0
WARMUP = 1.0
CONNECTIONS = (1, 20)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    body: dict[str, object]
    headers: dict[str, str]
    end: bytes  # what the last event of a complete stream carries


@dataclass
class Sample:
    ttfb: list[float]
    streams: int = 0
    failures: int = 0
    seconds: float = 0.0


async def one_stream(session: aiohttp.ClientSession, target: Target, sample: Sample) -> None:
    sent = time.perf_counter()
    async with session.post(target.url, json=target.body, headers=target.headers) as response:
        first = await response.content.readany()
        ttfb = time.perf_counter() - sent
        rest = await response.read()
    if response.status != 200 or target.end not in first + rest:
        sample.failures += 1
        return
    sample.ttfb.append(ttfb)
    sample.streams += 1


async def load(target: Target, connections: int, seconds: float) -> Sample:
    sample = Sample(ttfb=[])
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.monotonic() + seconds

        async def connection() -> None:
            while time.monotonic() < end:
                try:
                    await one_stream(session, target, sample)
                except (aiohttp.ClientError, TimeoutError):
                    sample.failures += 1

        started_at = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        sample.seconds = time.perf_counter() - started_at
    return sample


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="measured seconds per run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    started_at = time.monotonic()
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stream-ttfb-")))
        served = serve_gateway(stack, logs, DBNAME)
        fake_url, url, secret = served.fake_url, served.url, served.secret

        targets = (
            Target(
                "direct",
                f"{fake_url}/chat/completions",
                {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": PROMPT}],
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                {"authorization": f"Bearer {PROVIDER_KEY}"},
                b"data: [DONE]",
            ),
            Target(
                "gateway",
                f"{url}/functions/v1/execute-llm",
                {"processor_id": DEMO_PROCESSOR, "prompt": PROMPT, "stream": True},
                {"authorization": f"Bearer {demo_token(secret)}"},
                b"event: done",
            ),
        )
        results: dict[tuple[str, int], list[Sample]] = {}
        for number in range(args.rounds):
            for connections in CONNECTIONS:
                for target in targets:
                    asyncio.run(load(target, connections, WARMUP))
                    results.setdefault((target.name, connections), []).append(
                        asyncio.run(load(target, connections, args.duration))
                    )
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)

    failures = [
        f"{name} at {connections} connection(s): {sum(s.failures for s in samples)} failed streams"
        for (name, connections), samples in results.items()
        if any(s.failures for s in samples)
    ]
    args.output.write_text(report(results, failures, args, time.monotonic() - started_at))
    print(f"wrote {args.output}", file=sys.stderr)
    if failures:
        sys.exit(1)


def report(
    results: dict[tuple[str, int], list[Sample]], failures: list[str], args: argparse.Namespace, took: float
) -> str:
    lines = ["# Streaming: time to first byte", ""]
    if failures:
        lines += ["**The run failed:** " + "; ".join(failures), ""]
    lines += [
        f"Command: `python -m bench.stream_ttfb`, {took / 60:.1f} min end to end. Machine: {os.cpu_count()} CPUs "
        f"({cpu_model()}), shared with other work. {args.rounds} rounds; each runs every target at 1, then 20 "
        f"connections, a {WARMUP:.0f} s warm-up and {args.duration:.0f} s measured. p50/p99 over all streams of "
        "all rounds; streams/s the mean of the rounds.",
        "",
        "- direct: the fake provider's OpenAI chat-completion stream (`stream_options.include_usage`); "
        "first byte = its first chunk.",
        "- gateway: `POST /functions/v1/execute-llm` with `stream: true` as the seed's demo admin (JWT, cached "
        "configuration and key, the same fake's stream, the usage row committed before `done`); "
        "first byte = its first `event: delta`.",
        "",
        "| target | connections | streams/s | TTFB p50 (ms) | TTFB p99 (ms) | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, connections), samples in results.items():
        ttfb = [t for s in samples for t in s.ttfb]
        rate = statistics.mean(s.streams / s.seconds for s in samples)
        failed = sum(s.failures for s in samples)
        lines.append(
            f"| {name} | {connections} | {rate:,.0f} | {percentile(ttfb, 0.5) * 1000:.2f} | "
            f"{percentile(ttfb, 0.99) * 1000:.2f} | {failed} |"
        )
    lines += ["", "Added by the gateway (gateway - direct, p50):", ""]
    for connections in CONNECTIONS:
        direct = [t for s in results[("direct", connections)] for t in s.ttfb]
        through = [t for s in results[("gateway", connections)] for t in s.ttfb]
        added = (percentile(through, 0.5) - percentile(direct, 0.5)) * 1000
        lines.append(f"- {connections} connection(s): {added:.2f} ms")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
