"""The SSRF guard for calls to a URL a tenant chose (an organization's own OpenAI-compatible endpoint).

A refused call raises `OutboundBlocked`, whose reason names a category and never an address the
host resolved to (those belong to someone else's network). Wiring, all at the session:

    session = aiohttp.ClientSession(
        connector=build_guarded_connector(allowed, limit=...),  # vets every address DNS returns
        middlewares=(guard_middleware(allowed),),  # vets IP literals, which skip the resolver
        ...,
    )

Both are needed: aiohttp connects to a literal IP host without calling the resolver, and the
middleware runs again for every hop, so a redirect cannot reach an unvetted literal either. Call
sites pass `allow_redirects=False` (a 3xx answer raises anyway), never pass `middlewares=` per
request (it replaces the session's), and read bodies with `read_capped`. Base URLs are checked
with `check_base_url` when they are saved.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from enum import StrEnum
from typing import TypeAlias
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_BODY_BYTES = 10 * 1024 * 1024


class BlockReason(StrEnum):
    METADATA = "cloud metadata endpoint"
    NON_PUBLIC_ADDRESS = "the host is or resolves to a private, loopback, link-local or reserved address"
    INVALID_HOST = "the host is not a valid name or address"
    REDIRECT = "redirects are not followed"
    BODY_TOO_LARGE = "the response body exceeds the size limit"


class OutboundBlocked(Exception):
    """The guard refused an outbound call; `reason` is safe to show to the tenant."""

    def __init__(self, reason: BlockReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


_METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer: a public address reachable only from inside Azure
        "fd00:ec2::254",  # AWS, IPv6
        "fd20:ce::254",  # GCP, IPv6
    )
)

# The explicit list is what the guard promises whatever this Python's ipaddress thinks; the
# is_global / is_multicast / is_reserved backstop in `_is_blocked` only ever adds refusals.
_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 included
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, 255.255.255.255 included
        # ::, ::1 and the forms embedding IPv4 are judged by their IPv4 (see `_effective`).
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/32",  # Teredo: refused whatever it embeds
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_PART = re.compile(r"0x[0-9a-f]*|[0-9]+")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The address inet_aton reads in `host` ("0x7f.1", "0177.0.0.1", "2130706433"), None for a name.

    A host made only of numeric parts is an address to the socket layer, never a name to look up.
    """
    parts = host.split(".")
    if not all(_NUMERIC_PART.fullmatch(part) for part in parts):
        return None
    try:
        values = [
            int(p[2:] or "0", 16) if p.startswith("0x") else int(p, 8 if p.startswith("0") else 10) for p in parts
        ]
    except ValueError:  # an octal part with an 8 or a 9
        raise OutboundBlocked(BlockReason.INVALID_HOST) from None
    *leading, last = values
    # Each leading part is one byte; the last part fills the bytes that are left.
    if len(values) > 4 or any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        raise OutboundBlocked(BlockReason.INVALID_HOST)
    return ipaddress.IPv4Address(sum(v << (8 * (3 - i)) for i, v in enumerate(leading)) + last)


def _literal_address(host: str) -> Address | None:
    """The IP address a URL host or a resolver answer spells, None for a name."""
    host = host.rstrip(".").lower()
    if ":" not in host:
        return _ipv4_literal(host)
    try:
        # The zone ("%eth0", "%25eth0" in a URL) changes the interface, not the address class.
        return ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        raise OutboundBlocked(BlockReason.INVALID_HOST) from None


def _effective(address: Address) -> Address:
    """The IPv4 address inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms; else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_blocked(address: Address) -> bool:
    return (
        any(address in network for network in _BLOCKED)
        or not address.is_global
        or address.is_multicast
        or address.is_reserved
    )


def _is_allowed(address: Address, allowed_networks: Sequence[Network]) -> bool:
    # ::ffff:10.0.0.5 reaches the same host as 10.0.0.5, so either form inside a network counts.
    return any(form in network for form in (address, _effective(address)) for network in allowed_networks)


def _vet_address(address: Address, allowed_networks: Sequence[Network]) -> None:
    if address in _METADATA_ADDRESSES or _effective(address) in _METADATA_ADDRESSES:
        raise OutboundBlocked(BlockReason.METADATA)
    if _is_allowed(address, allowed_networks):
        return
    if _is_blocked(_effective(address)):
        raise OutboundBlocked(BlockReason.NON_PUBLIC_ADDRESS)


def _vet_host(host: str, allowed_networks: Sequence[Network]) -> Address | None:
    """Refuse a metadata name or a refused literal; the literal's address, or None for a name."""
    if host.rstrip(".").lower() in _METADATA_NAMES:
        raise OutboundBlocked(BlockReason.METADATA)
    address = _literal_address(host)
    if address is not None:
        _vet_address(address, allowed_networks)
    return address


def vet_url(url: URL, allowed_networks: Sequence[Network]) -> None:
    """Refuse a URL whose host is a metadata name or an IP literal (in any spelling) outside policy.

    Names pass: the `GuardedResolver` vets what they resolve to, at connection time.
    """
    if not url.raw_host:
        raise OutboundBlocked(BlockReason.INVALID_HOST)
    _vet_host(url.raw_host, allowed_networks)


def guard_middleware(allowed_networks: Sequence[Network]) -> aiohttp.ClientMiddlewareType:
    """A session middleware: `vet_url` before every request and redirect hop; a 3xx answer raises."""
    allowed = tuple(allowed_networks)

    async def guard(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        vet_url(request.url, allowed)
        response = await handler(request)
        if response.status in _REDIRECTS:
            response.close()
            raise OutboundBlocked(BlockReason.REDIRECT)
        return response

    return guard


class GuardedResolver(AbstractResolver):
    """Resolves once through `inner` and hands aiohttp only answers whose every address passed.

    aiohttp connects to exactly these addresses (keeping the name for SNI and Host), so a second
    lookup that could rebind the name never happens, and its DNS cache only ever holds vetted
    answers: a refusal raises, and aiohttp caches nothing for a lookup that raised.
    """

    def __init__(self, allowed_networks: Sequence[Network], inner: AbstractResolver) -> None:
        self._allowed = tuple(allowed_networks)
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = _vet_host(host, self._allowed)
        if literal is not None:
            # A hex or octal spelling aiohttp did not recognise as an IP: answered here, not looked up.
            return [
                ResolveResult(
                    hostname=host,
                    host=str(literal),
                    port=port,
                    family=socket.AF_INET if literal.version == 4 else socket.AF_INET6,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            ]
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            address = _literal_address(answer["host"])
            if address is None:  # not an address: nothing to vet, so nothing to connect to
                raise OutboundBlocked(BlockReason.INVALID_HOST)
            _vet_address(address, self._allowed)
        return answers

    async def close(self) -> None:
        await self._inner.close()


def build_guarded_connector(
    allowed_networks: Sequence[Network], *, limit: int, resolver: AbstractResolver | None = None
) -> aiohttp.TCPConnector:
    """A connector resolving through a `GuardedResolver` around `resolver` (default: the system's).

    Build it inside the event loop. The connector does not close a resolver it was given: the
    default one holds nothing, and an injected one is closed by its owner.
    """
    inner = resolver if resolver is not None else ThreadedResolver()
    return aiohttp.TCPConnector(limit=limit, limit_per_host=0, resolver=GuardedResolver(allowed_networks, inner))


async def read_capped(response: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused past `limit` bytes: by Content-Length before reading, then while reading."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        raise OutboundBlocked(BlockReason.BODY_TOO_LARGE)
    body = bytearray()
    # Counts decoded bytes, so a small compressed body cannot inflate past the limit either.
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            response.close()
            raise OutboundBlocked(BlockReason.BODY_TOO_LARGE)
    return bytes(body)


def check_base_url(url: str, allowed_networks: Sequence[Network]) -> None:
    """Refuse a base URL a tenant may not save, with a ValueError saying why.

    https, or http for an IP literal inside `allowed_networks` (a name could point anywhere later,
    and the API key would travel in clear); no user info, no fragment; an IPv4 literal written as
    a dotted quad; a host `vet_url` would not refuse.
    """
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise ValueError("the base URL is not a valid URL") from exc
    if parsed.scheme not in ("https", "http") or not parsed.raw_host:
        raise ValueError("the base URL must be an absolute https URL")
    if "@" in urlsplit(url).netloc:
        raise ValueError("the base URL must not contain a user name or password")
    if "#" in url:
        raise ValueError("the base URL must not contain a fragment")
    try:
        address = _vet_host(parsed.raw_host, allowed_networks)
    except OutboundBlocked as exc:
        raise ValueError(f"the base URL is refused: {exc.reason}") from exc
    if isinstance(address, ipaddress.IPv4Address) and parsed.raw_host != str(address):
        raise ValueError("write an IPv4 address in the base URL as four decimal numbers (a.b.c.d)")
    if parsed.scheme == "http" and (address is None or not _is_allowed(address, allowed_networks)):
        raise ValueError("the base URL must use https; http only for an IP address inside the allowed networks")
