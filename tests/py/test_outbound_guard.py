"""The SSRF guard for tenant-chosen provider URLs (gateway/outbound_guard.py).

Nothing here connects outside 127.0.0.0/8: names come from a fake inner resolver, so a public
answer is only ever vetted, never dialled; real requests go to aiohttp servers on 127.0.0.1 and
127.0.0.2, whose own records say what the guarded connector really connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from gateway.outbound_guard import (
    MAX_BODY_BYTES,
    BlockReason,
    GuardedResolver,
    Network,
    OutboundBlocked,
    build_guarded_connector,
    check_base_url,
    guard_middleware,
    read_capped,
    vet_url,
)

LOOPBACK_ONLY = [ipaddress.ip_network("127.0.0.1/32")]
EVERYTHING = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]

# One or more addresses from every range the guard must refuse, written out here rather than
# taken from the module, so the test states the requirement instead of mirroring the code.
BLOCKED_V4 = [
    "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.10",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
]
BLOCKED_V6 = [
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "100::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b:1::1",  # local-use NAT64
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:192.168.0.1",
    "::ffff:100.64.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
]
PUBLIC = [
    "8.8.8.8",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]
METADATA_ADDRESSES = [
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
]
METADATA_NAMES = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
]
# (spelling, the address inet_aton reads in it)
NUMERIC_SPELLINGS = [
    ("2130706433", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("0x7f.0.0.1.", "127.0.0.1"),
    ("10.1.2", "10.1.0.2"),
    ("0xa.0x1.0x2.0x3", "10.1.2.3"),
    ("012.0.0.1", "10.0.0.1"),
    ("192.168.257", "192.168.1.1"),
    ("3232235777", "192.168.1.1"),
]


def url_for(address: str, port: int | None = None) -> URL:
    host = f"[{address}]" if ":" in address else address
    return URL(f"http://{host}" + (f":{port}" if port else "") + "/v1")


class FakeResolver(AbstractResolver):
    """Answers each name with the next of its scripted answers (the last one repeats); records calls."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        scripted = self._answers[host]
        addresses = scripted.pop(0) if len(scripted) > 1 else scripted[0]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


def guard(answers: dict[str, list[list[str]]], allowed: Sequence[Network] = ()) -> tuple[GuardedResolver, FakeResolver]:
    inner = FakeResolver(answers)
    return GuardedResolver(allowed, inner), inner


async def refusal(resolver: GuardedResolver, host: str) -> OutboundBlocked:
    with pytest.raises(OutboundBlocked) as caught:
        await resolver.resolve(host, 443)
    return caught.value


# --- Addresses a name resolves to ------------------------------------------------------------


@pytest.mark.parametrize("address", BLOCKED_V4 + BLOCKED_V6)
async def test_name_resolving_to_a_blocked_address_is_refused_without_naming_it(address: str) -> None:
    resolver, _ = guard({"api.example.test": [[address]]})
    blocked = await refusal(resolver, "api.example.test")
    assert blocked.reason is BlockReason.NON_PUBLIC_ADDRESS
    assert address not in str(blocked) and address not in repr(blocked)


@pytest.mark.parametrize("address", PUBLIC)
async def test_name_resolving_to_a_public_address_gets_exactly_that_answer(address: str) -> None:
    resolver, inner = guard({"api.example.test": [[address]]})
    answers = await resolver.resolve("api.example.test", 443)
    assert [a["host"] for a in answers] == [address]
    assert inner.calls == ["api.example.test"]


@pytest.mark.parametrize("answer", [["8.8.8.8", "10.0.0.1"], ["2606:4700::1111", "fd00::1"], ["8.8.8.8", "::1"]])
async def test_one_blocked_address_among_public_ones_refuses_the_name(answer: list[str]) -> None:
    resolver, _ = guard({"api.example.test": [answer]})
    blocked = await refusal(resolver, "api.example.test")
    assert blocked.reason is BlockReason.NON_PUBLIC_ADDRESS
    assert answer[1] not in str(blocked)


async def test_an_allowed_network_lets_its_private_addresses_through_in_every_form() -> None:
    allowed = [ipaddress.ip_network("10.0.0.0/8")]
    resolver, _ = guard(
        {"a.test": [["10.1.2.3"]], "b.test": [["::ffff:10.1.2.3"]], "c.test": [["192.168.0.1"]]}, allowed
    )
    assert [a["host"] for a in await resolver.resolve("a.test", 80)] == ["10.1.2.3"]
    assert [a["host"] for a in await resolver.resolve("b.test", 80)] == ["::ffff:10.1.2.3"]
    assert (await refusal(resolver, "c.test")).reason is BlockReason.NON_PUBLIC_ADDRESS


@pytest.mark.parametrize("address", METADATA_ADDRESSES)
async def test_metadata_addresses_are_refused_even_inside_an_allowed_network(address: str) -> None:
    resolver, _ = guard({"api.example.test": [[address]]}, EVERYTHING)
    assert (await refusal(resolver, "api.example.test")).reason is BlockReason.METADATA
    with pytest.raises(OutboundBlocked) as caught:
        vet_url(url_for(address), EVERYTHING)
    assert caught.value.reason is BlockReason.METADATA


@pytest.mark.parametrize("host", [form for name in METADATA_NAMES for form in (name, name.upper(), name + ".")])
async def test_metadata_names_are_refused_without_a_lookup(host: str) -> None:
    resolver, inner = guard({host: [["8.8.8.8"]]}, EVERYTHING)
    assert (await refusal(resolver, host)).reason is BlockReason.METADATA
    assert inner.calls == []
    with pytest.raises(OutboundBlocked) as caught:
        vet_url(URL(f"https://{host}/v1"), EVERYTHING)
    assert caught.value.reason is BlockReason.METADATA


async def test_the_name_is_looked_up_once_per_resolve_so_a_rebinding_answer_is_refused() -> None:
    resolver, inner = guard({"rebind.test": [["8.8.8.8"], ["127.0.0.1"]]})
    assert [a["host"] for a in await resolver.resolve("rebind.test", 443)] == ["8.8.8.8"]
    assert inner.calls == ["rebind.test"]
    assert (await refusal(resolver, "rebind.test")).reason is BlockReason.NON_PUBLIC_ADDRESS


# --- Literal hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize("address", BLOCKED_V4 + BLOCKED_V6)
def test_literal_blocked_address_in_the_url_is_refused(address: str) -> None:
    with pytest.raises(OutboundBlocked) as caught:
        vet_url(url_for(address), [])
    assert caught.value.reason is BlockReason.NON_PUBLIC_ADDRESS


@pytest.mark.parametrize("address", PUBLIC)
def test_literal_public_address_in_the_url_passes(address: str) -> None:
    vet_url(url_for(address), [])


@pytest.mark.parametrize(("spelling", "address"), NUMERIC_SPELLINGS)
async def test_numeric_spellings_are_the_address_inet_aton_reads_never_a_name(spelling: str, address: str) -> None:
    with pytest.raises(OutboundBlocked):
        vet_url(url_for(spelling), [])
    exact = [ipaddress.ip_network(address)]
    vet_url(url_for(spelling), exact)
    resolver, inner = guard({}, exact)
    assert [a["host"] for a in await resolver.resolve(spelling, 80)] == [address]
    assert inner.calls == []


@pytest.mark.parametrize("spelling", ["0251.0376.0251.0376", "2852039166", "0xa9fea9fe", "169.254.43518"])
async def test_numeric_spellings_of_the_metadata_address_are_refused(spelling: str) -> None:
    with pytest.raises(OutboundBlocked) as caught:
        vet_url(url_for(spelling), EVERYTHING)
    assert caught.value.reason is BlockReason.METADATA
    resolver, _ = guard({}, EVERYTHING)
    assert (await refusal(resolver, spelling)).reason is BlockReason.METADATA


@pytest.mark.parametrize("spelling", ["1.2.3.4.5", "256.0.0.1", "08.0.0.1", "1.2.3.0x100", "4294967296", "1.2.65536"])
async def test_malformed_numeric_hosts_are_refused_not_looked_up(spelling: str) -> None:
    with pytest.raises(OutboundBlocked) as caught:
        vet_url(url_for(spelling), EVERYTHING)
    assert caught.value.reason is BlockReason.INVALID_HOST
    resolver, inner = guard({}, EVERYTHING)
    assert (await refusal(resolver, spelling)).reason is BlockReason.INVALID_HOST
    assert inner.calls == []


BLOCKED_V4_NETWORKS = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8")] + [
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@st.composite
def blocked_ipv4(draw: st.DrawFn) -> int:
    network = draw(st.sampled_from(BLOCKED_V4_NETWORKS))
    return int(network.network_address) + draw(st.integers(0, network.num_addresses - 1))


def spellings(value: int) -> list[str]:
    octets = value.to_bytes(4, "big")
    return [
        str(value),
        hex(value),
        "0" + oct(value)[2:],
        ".".join(f"0{o:o}" for o in octets),
        ".".join(hex(o) for o in octets),
        f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}",
        f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}",
        f"{hex(octets[0])}.0{int.from_bytes(octets[1:], 'big'):o}",
        str(ipaddress.IPv4Address(value)),
        f"[::ffff:{ipaddress.IPv4Address(value)}]",
    ]


@given(blocked_ipv4())
def test_every_spelling_of_a_blocked_ipv4_address_is_refused(value: int) -> None:
    for spelling in spellings(value):
        with pytest.raises(OutboundBlocked):
            vet_url(URL(f"https://{spelling}/v1"), [])
        with pytest.raises(ValueError):
            check_base_url(f"https://{spelling}/v1", [])


# --- Base URLs as saved ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.example.com/v1", []),
        ("https://api.example.com:8443/openai/v1", []),
        ("https://8.8.8.8/v1", []),
        ("https://[2606:4700::1111]/v1", []),
        ("https://10.0.0.5/v1", [ipaddress.ip_network("10.0.0.0/8")]),
        ("http://10.0.0.5:8000/v1", [ipaddress.ip_network("10.0.0.0/8")]),
        ("http://[fd00::5]:8000/v1", [ipaddress.ip_network("fd00::/8")]),
    ],
)
def test_acceptable_base_urls(url: str, allowed: list[Network]) -> None:
    check_base_url(url, allowed)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://api.example.com/v1", []),
        ("http://8.8.8.8/v1", []),
        ("http://models.internal/v1", [ipaddress.ip_network("10.0.0.0/8")]),  # a name could point anywhere
        ("http://10.0.0.5/v1", []),
        ("ftp://api.example.com/v1", []),
        ("api.example.com/v1", []),
        ("https:///v1", []),
        ("https://user:secret@api.example.com/v1", []),
        ("https://user@api.example.com/v1", []),
        ("https://@api.example.com/v1", []),
        ("https://api.example.com/v1#part", []),
        ("https://api.example.com/v1#", []),
        ("https://metadata.google.internal/v1", EVERYTHING),
        ("https://169.254.169.254/v1", EVERYTHING),
        ("https://0x08080808/v1", []),  # a public address, but not as four decimal numbers
        ("https://8.8.2056/v1", []),
        ("https://08.0.0.1/v1", []),
    ]
    + [(f"https://{spelling}/v1", []) for spelling, _ in NUMERIC_SPELLINGS]
    + [(str(url_for(address)).replace("http:", "https:"), []) for address in BLOCKED_V4 + BLOCKED_V6],
)
def test_refused_base_urls(url: str, allowed: list[Network]) -> None:
    with pytest.raises(ValueError):
        check_base_url(url, allowed)


# --- Through aiohttp, against servers on loopback ----------------------------------------------


class Server:
    """An aiohttp server on one loopback address that records the Host header of every request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.hosts: list[str] = []
        self.release = asyncio.Event()


@asynccontextmanager
async def serving(address: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Server]:
    server = Server(port)

    async def ok(request: web.Request) -> web.Response:
        server.hosts.append(request.headers["Host"])
        response = web.Response(text="ok")
        # No keep-alive: every request needs a fresh connection, hence a fresh resolution.
        response.force_close()
        return response

    async def redirect(request: web.Request) -> web.Response:
        server.hosts.append(request.headers["Host"])
        raise web.HTTPFound(f"http://{address}:{server.port}/v1")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_BODY_BYTES + 1))

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * (MAX_BODY_BYTES // 10))
        await response.write(b"x" * (MAX_BODY_BYTES % 10 + 1))
        await response.write_eof()
        return response

    async def announced(request: web.Request) -> web.StreamResponse:
        # Announces more than the cap and then sends nothing until the test is over.
        response = web.StreamResponse(headers={"Content-Length": str(MAX_BODY_BYTES + 1)})
        await response.prepare(request)
        await server.release.wait()
        return response

    async def exact(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1000)

    app = web.Application()
    app.router.add_get("/v1", ok)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/announced", announced)
    app.router.add_get("/exact", exact)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def server_url(server: Server, path: str = "/v1") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


@asynccontextmanager
async def guarded_session(
    resolver: AbstractResolver, allowed: Sequence[Network], *, middleware: bool = True
) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        connector=build_guarded_connector(allowed, limit=10, resolver=resolver),
        middlewares=(guard_middleware(allowed),) if middleware else (),
        timeout=aiohttp.ClientTimeout(total=20),
    ) as session:
        yield session


async def test_allowed_network_reaches_a_private_server_by_name_keeping_the_host_header() -> None:
    async with serving() as server:
        resolver = FakeResolver({"models.internal.test": [["127.0.0.1"]]})
        async with (
            guarded_session(resolver, LOOPBACK_ONLY) as session,
            session.get(f"http://models.internal.test:{server.port}/v1", allow_redirects=False) as response,
        ):
            assert response.status == 200
        assert server.hosts == [f"models.internal.test:{server.port}"]


async def test_without_the_allowance_the_same_server_is_never_contacted() -> None:
    async with serving() as server:
        resolver = FakeResolver({"models.internal.test": [["127.0.0.1"]]})
        async with guarded_session(resolver, []) as session:
            with pytest.raises(OutboundBlocked) as caught:
                await session.get(f"http://models.internal.test:{server.port}/v1")
        assert caught.value.reason is BlockReason.NON_PUBLIC_ADDRESS
        assert server.hosts == []


async def test_ip_literals_skip_the_resolver_so_the_middleware_must_vet_them() -> None:
    async with serving() as server:
        resolver = FakeResolver({})
        # Pins aiohttp's behaviour: the connector alone dials a literal without asking the resolver.
        async with guarded_session(resolver, [], middleware=False) as session, session.get(server_url(server)) as r:
            assert r.status == 200
        assert resolver.calls == []
        async with guarded_session(resolver, []) as session:
            with pytest.raises(OutboundBlocked) as caught:
                await session.get(server_url(server))
        assert caught.value.reason is BlockReason.NON_PUBLIC_ADDRESS
        assert len(server.hosts) == 1


async def test_connections_go_to_the_vetted_answer_and_a_rebound_answer_is_refused() -> None:
    async with serving("127.0.0.1") as vetted, serving("127.0.0.2", vetted.port) as rebound:
        resolver = FakeResolver({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
        url = f"http://rebind.test:{vetted.port}/v1"
        async with guarded_session(resolver, LOOPBACK_ONLY) as session:
            for _ in range(2):
                async with session.get(url) as response:
                    assert response.status == 200
            # The second connection came from aiohttp's DNS cache, which holds the vetted answer.
            assert resolver.calls == ["rebind.test"]
            assert isinstance(session.connector, aiohttp.TCPConnector)
            session.connector.clear_dns_cache()
            with pytest.raises(OutboundBlocked):
                await session.get(url)
        assert resolver.calls == ["rebind.test", "rebind.test"]
        assert len(vetted.hosts) == 2
        assert rebound.hosts == []


async def test_a_redirect_is_refused_and_not_followed() -> None:
    async with serving() as server:
        resolver = FakeResolver({"models.internal.test": [["127.0.0.1"]]})
        async with guarded_session(resolver, LOOPBACK_ONLY) as session:
            with pytest.raises(OutboundBlocked) as caught:
                await session.get(f"http://models.internal.test:{server.port}/redirect")
        assert caught.value.reason is BlockReason.REDIRECT
        assert server.hosts == [f"models.internal.test:{server.port}"]


@pytest.mark.parametrize("path", ["/big", "/big-chunked", "/announced"])
async def test_a_body_over_the_cap_is_refused(path: str) -> None:
    async with serving() as server, guarded_session(FakeResolver({}), LOOPBACK_ONLY) as session:
        async with session.get(server_url(server, path)) as response:
            with pytest.raises(OutboundBlocked) as caught:
                await asyncio.wait_for(read_capped(response), timeout=10)
        assert caught.value.reason is BlockReason.BODY_TOO_LARGE


async def test_a_body_at_the_cap_is_read_whole() -> None:
    async with serving() as server, guarded_session(FakeResolver({}), LOOPBACK_ONLY) as session:
        async with session.get(server_url(server, "/exact")) as response:
            assert await read_capped(response, limit=1000) == b"x" * 1000
        async with session.get(server_url(server, "/exact")) as response:
            with pytest.raises(OutboundBlocked):
                await read_capped(response, limit=999)
