"""The outbound address policy, fed addresses directly (nothing is connected)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from fabflow.steps.outbound import (
    OutboundPolicy,
    OutboundRefused,
    PolicyResolver,
    literal_ip,
    refusal_reason,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud-metadata"),
        ("fd00:ec2::254", "cloud-metadata"),
        ("100.100.100.200", "cloud-metadata"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # reserved class E; Python files it under private too
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_refusal_reason(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("allow", "host", "address", "allowed"),
    [
        ((), "api.example.com", "8.8.8.8", True),
        ((), "127.0.0.1", "127.0.0.1", False),
        (("127.0.0.1",), "127.0.0.1", "127.0.0.1", True),
        (("127.0.0.1",), "127.0.0.1", "127.0.0.2", False),
        (("127.0.0.0/8",), "localhost", "127.0.0.1", True),
        (("10.0.0.0/8",), "erp.internal", "10.1.2.3", True),
        (("10.0.0.0/8",), "erp.internal", "192.168.0.1", False),
        (("erp.internal",), "ERP.internal.", "10.1.2.3", True),
        (("erp.internal",), "other.internal", "10.1.2.3", False),
        (("127.0.0.0/8",), "localhost", "::ffff:127.0.0.1", True),
        (("::1",), "localhost", "::1", True),
        (("[::1]",), "localhost", "::1", True),
    ],
)
def test_allow_list(allow: tuple[str, ...], host: str, address: str, allowed: bool) -> None:
    policy = OutboundPolicy.from_allow(allow)
    if allowed:
        policy.check(host, address)
    else:
        with pytest.raises(OutboundRefused) as caught:
            policy.check(host, address)
        assert caught.value.error_type == "outbound_refused"
        assert host in caught.value.message and "FABFLOW_OUTBOUND_ALLOW" in caught.value.message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("10.0.0.5", "10.0.0.5"),
        # every IPv4 spelling inet_aton reads is the address it means
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("169.254.169.254.", "169.254.169.254"),
        ("cafe.de", None),  # hex letters only, but a name
        ("1e100.net", None),
        ("256.1.1.1", None),
    ],
)
def test_literal_ip(host: str, expected: str | None) -> None:
    assert literal_ip(host) == expected


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "127.1", "0x7f.1", "0xa9fea9fe"])
def test_odd_ipv4_spellings_are_judged_by_the_policy(host: str) -> None:
    address = literal_ip(host)
    assert address is not None
    with pytest.raises(OutboundRefused):
        OutboundPolicy.from_allow(()).check(host, address)


class FixedResolver(AbstractResolver):
    """A DNS answer chosen by the test; nothing is resolved or connected."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = PolicyResolver(OutboundPolicy(), FixedResolver("10.0.0.5"))
    with pytest.raises(OutboundRefused) as caught:
        await resolver.resolve("orders.attacker.example", 443)
    assert caught.value.details == {
        "host": "orders.attacker.example",
        "address": "10.0.0.5",
        "reason": "private",
    }


async def test_refused_addresses_are_dropped_from_a_mixed_answer() -> None:
    # A rebinding answer mixes a public address with an internal one: only the public one
    # is handed to the connector.
    resolver = PolicyResolver(OutboundPolicy(), FixedResolver("169.254.169.254", "8.8.8.8"))
    results = await resolver.resolve("mixed.example", 80)
    assert [r["host"] for r in results] == ["8.8.8.8"]


async def test_an_allowed_name_passes_whatever_it_resolves_to() -> None:
    policy = OutboundPolicy.from_allow(["erp.internal"])
    resolver = PolicyResolver(policy, FixedResolver("10.0.0.5"))
    assert [r["host"] for r in await resolver.resolve("erp.internal", 80)] == ["10.0.0.5"]
