"""Outbound address policy: which addresses the REST step may connect to.

Loopback, private, link-local, multicast, reserved, unspecified and cloud-metadata addresses
are refused unless ``FABFLOW_OUTBOUND_ALLOW`` names the host or a CIDR containing the address.
The check runs on the *resolved* address, inside the resolver that the HTTP connector uses,
so the address checked is the address connected to: a DNS answer that changes between a check
and the connect (DNS rebinding) has no gap to slip through.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from fabflow.errors import PermanentStepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance-metadata endpoints of the big clouds; most are link-local already, but
# 100.100.100.200 (Alibaba) and fd00:ec2::254 (AWS IPv6) would otherwise pass as "shared"/"ULA".
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)


class OutboundRefused(PermanentStepError):
    """A connection to an address the outbound policy refuses."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(
            f"refused to connect to {host} ({address}): {reason} address; "
            f"to allow it, add {host!r} or a CIDR containing {address} to FABFLOW_OUTBOUND_ALLOW",
            error_type="outbound_refused",
            details={"host": host, "address": address, "reason": reason},
        )


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is refused by default, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_reason(address.ipv4_mapped)  # ::ffff:127.0.0.1 is loopback too
    checks = (
        (address in METADATA_ADDRESSES, "cloud-metadata"),
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        # Catch-all: carrier-grade NAT (100.64/10), documentation ranges, 6to4 relays ...
        (not address.is_global, "non-public"),
    )
    return next((reason for hit, reason in checks if hit), None)


@dataclass(frozen=True)
class OutboundPolicy:
    """Allowed host names and networks (from ``FABFLOW_OUTBOUND_ALLOW``)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_allow(cls, entries: Iterable[str]) -> OutboundPolicy:
        """Split the allow list into host names and networks (a bare IP is a /32 or /128)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(_norm_host(entry))
        return cls(frozenset(hosts), tuple(networks))

    def check(self, host: str, address: str) -> None:
        """Raise ``OutboundRefused`` unless connecting to ``address`` for ``host`` is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        reason = refusal_reason(ip)
        if reason is None or self.allows(host, ip):
            return
        raise OutboundRefused(host, str(ip), reason)

    def allows(self, host: str, ip: IPAddress) -> bool:
        """Whether the allow list names ``host`` or a network containing ``ip``."""
        if _norm_host(host) in self.hosts:
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(ip in net or (mapped is not None and mapped in net) for net in self.networks)


def _norm_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


# What inet_aton may read as an IPv4 address: digits, dots, and hex (0x7f.1, 2130706433,
# 0177.0.0.1, 127.1). A name needs a letter beyond a-f, so it never matches.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def literal_ip(host: str) -> str | None:
    """``host`` as an IP address string when it is one (URL brackets removed), else None.
    Every IPv4 spelling the operating system accepts (``inet_aton``: ``2130706433``,
    ``0177.0.0.1``, ``127.1``, ``0x7f.1``) is read as the address it means, so the policy
    judges it rather than whatever client happens to refuse or accept it."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(bare.rstrip(".")):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(bare.rstrip(".")))
    except OSError:
        return None


class PolicyResolver(AbstractResolver):
    """A resolver that drops the addresses the policy refuses before aiohttp can connect.

    When every address of a host is refused, resolving fails with ``OutboundRefused``.
    aiohttp does not call the resolver for literal IP hosts; ``RestStep`` checks those
    itself with the same policy (a literal address cannot change between check and connect).
    """

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner: AbstractResolver = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with the wrapped resolver and keep only the allowed addresses."""
        results = await self.inner.resolve(host, port, family)
        return filter_results(self.policy, host, results)

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self.inner.close()


def filter_results(
    policy: OutboundPolicy, host: str, results: list[ResolveResult]
) -> list[ResolveResult]:
    """The allowed subset of ``results``; ``OutboundRefused`` (the first refusal) if none is."""
    allowed: list[ResolveResult] = []
    first_refusal: OutboundRefused | None = None
    for result in results:
        try:
            policy.check(host, result["host"])
        except OutboundRefused as exc:
            first_refusal = first_refusal or exc
            continue
        allowed.append(result)
    if not allowed and first_refusal is not None:
        raise first_refusal
    return allowed
