"""Loopback ports: find free ones, and refuse a taken one with a message that names its owner."""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from pathlib import Path

from baylink.runtime.errors import PortInUseError

LOOPBACK = "127.0.0.1"
_TCP_LISTEN = "0A"
_MAX_COMMAND_CHARS = 80


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that nothing listens on right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct free TCP ports on `host`."""
    with contextlib.ExitStack() as stack:
        # Every socket stays bound until all are chosen, so the kernel cannot hand out a
        # port twice within one call.
        sockets = [stack.enter_context(socket.socket(_family(host))) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUseError unless a server could listen on `host:port` now."""
    with socket.socket(_family(host)) as sock:
        # Servers (uvicorn, Tansu) set SO_REUSEADDR, so a port left in TIME_WAIT by an
        # earlier run is no conflict for them; test the same way they will bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise PortInUseError(f"cannot listen on {host}:{port}: {error.strerror}") from None
            owner = describe_listener(port)
            raise PortInUseError(f"port {port} on {host} is already in use (by {owner})") from None


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return whether something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_listening(host: str, port: int, timeout: float) -> bool:
    """Poll until `host:port` accepts connections; return False if `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return True
        time.sleep(0.05)
    return False


def describe_listener(port: int) -> str:
    """Name the process listening on `port`, as far as /proc lets us see it."""
    inodes = _listening_socket_inodes(port)
    if inodes:
        for pid, command in _processes_owning(inodes):
            return f"pid {pid}: {command}"
    return "another process"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _listening_socket_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == _TCP_LISTEN:
                inodes.add(fields[9])
    return inodes


def _processes_owning(inodes: set[str]) -> list[tuple[int, str]]:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: list[tuple[int, str]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if _fd_targets(proc) & wanted:
                owners.append((int(proc.name), _command_line(proc)))
        except OSError:
            # Processes of other users, or ones that exit while we look, are skipped.
            continue
    return owners


def _fd_targets(proc: Path) -> set[str]:
    targets: set[str] = set()
    for fd in (proc / "fd").iterdir():
        # A descriptor can close between listing and reading (our own listing's does).
        with contextlib.suppress(OSError):
            targets.add(fd.readlink().as_posix())
    return targets


def _command_line(proc: Path) -> str:
    raw = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip()
    command = raw.decode(errors="replace") or (proc / "comm").read_text()
    # The message must stay on one line even when an argument holds newlines.
    command = " ".join(command.split())
    if len(command) > _MAX_COMMAND_CHARS:
        return command[: _MAX_COMMAND_CHARS - 3] + "..."
    return command
