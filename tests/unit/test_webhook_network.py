"""Webhooks connect to public addresses only: which addresses count as public, and that the
connection goes to the address that was checked, never to the name resolved again."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.webhook_network import PublicAddressesOnly, is_public

NOT_PUBLIC = [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "::1", "fe80::1%eth0", "fc00::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "203.119.8.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_link_local_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_addresses_are_public(address: str) -> None:
    assert is_public(address)


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_ipv6_mapping_agree(address: ipaddress.IPv4Address) -> None:
    assert is_public(str(address)) == is_public(f"::ffff:{address}")


@given(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"]),
       st.integers(0, 2**24 - 1))  # fmt: skip
def test_every_address_of_the_private_ranges_is_refused(network: str, offset: int) -> None:
    block = ipaddress.ip_network(network)
    assert not is_public(str(block[offset % block.num_addresses]))


class _Recorder(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append(host)
        return object()


def _resolving(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_the_connection_goes_to_the_checked_address() -> None:
    recorder = _Recorder()
    backend = PublicAddressesOnly(recorder, _resolving("203.119.8.1"))

    await backend.connect_tcp("receiver.example", 443)

    assert recorder.connected == ["203.119.8.1"]


async def test_a_name_with_any_private_address_is_refused_before_connecting() -> None:
    recorder = _Recorder()
    backend = PublicAddressesOnly(recorder, _resolving("203.119.8.1", "10.0.0.7"))

    with pytest.raises(httpcore.ConnectError, match=r"10\.0\.0\.7, not a public address"):
        await backend.connect_tcp("rebinding.example", 443)
    assert recorder.connected == []
