"""Free port finding, and the one-line refusal of a port that is taken."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from baylink.errors import BaylinkCliError
from baylink.runtime.errors import PortInUseError
from baylink.runtime.ports import ensure_port_free, free_port, free_ports, is_listening


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)

    assert len(set(ports)) == 8
    for port in ports:
        ensure_port_free("127.0.0.1", port)


def test_a_free_port_has_no_listener() -> None:
    port = free_port()

    assert not is_listening("127.0.0.1", port)


def test_taken_port_is_refused_with_one_line_naming_the_owner(
    listening_socket: socket.socket,
) -> None:
    port = listening_socket.getsockname()[1]

    with pytest.raises(PortInUseError) as raised:
        ensure_port_free("127.0.0.1", port)

    message = str(raised.value)
    assert message.startswith(f"port {port} on 127.0.0.1 is already in use (by pid {os.getpid()}: ")
    assert message.endswith(")")
    assert "\n" not in message
    assert isinstance(raised.value, BaylinkCliError)


def test_port_taken_on_all_interfaces_is_refused_on_loopback() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # a wildcard listener is the point
        sock.listen()
        port = sock.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            ensure_port_free("127.0.0.1", port)
