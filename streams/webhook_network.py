"""Where webhooks may connect: public addresses only, unless the operator allows others.

A partner chooses its webhook URL, so without this a subscription could make the relay POST
into the platform's own network (loopback, private ranges, the cloud metadata address). The
host is resolved once per connection, every address it resolves to is checked, and the
connection goes to a checked address: a name cannot pass the check with one address and then
connect to another. TLS still verifies the certificate against the host name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore
import httpx

# httpcore's signature; its timeout parameters are its protocol, not a choice made here.
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
ALLOW_SETTING = "BAYLINK_DELIVERY_WEBHOOK_PRIVATE_NETWORKS"


def is_public(address: str) -> bool:
    """Whether an address is globally routable (an IPv4-mapped IPv6 address by its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _addresses_of(host: str, port: int) -> list[str]:
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class PublicAddressesOnly(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to public addresses only."""

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._resolve = resolve or _addresses_of

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = list(dict.fromkeys(await self._resolve(host, port)))
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        refused = [a for a in addresses if not is_public(a)]
        if refused or not addresses:
            raise httpcore.ConnectError(
                f"{host} resolves to {', '.join(refused) or 'nothing'}, not a public address; "
                f"webhooks go to public addresses unless {ALLOW_SETTING}=true"
            )
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not delivered over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def webhook_client(timeout_seconds: float, private_networks: bool) -> httpx.AsyncClient:
    """An HTTP client for webhooks: no redirects (a receiver could redirect anywhere), and
    public addresses only unless ``private_networks``."""
    if private_networks:
        return httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)
    transport = httpx.AsyncHTTPTransport()
    # httpx takes no network backend; its pool is rebuilt around one, with httpx's defaults.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=httpx.Limits().max_connections,
        max_keepalive_connections=httpx.Limits().max_keepalive_connections,
        keepalive_expiry=httpx.Limits().keepalive_expiry,
        network_backend=PublicAddressesOnly(),
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout_seconds, follow_redirects=False)
