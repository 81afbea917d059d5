"""Can the server listen where the operator asked: a busy port ends a launch at once, it is no tier's failure."""

from __future__ import annotations

import contextlib
import errno
import os
import socket

import psutil


class PortUnavailable(Exception):
    """The server cannot have this host:port; the message is the one line that tells the operator what to change."""


def port_holder(port: int) -> str:
    """Who listens on `port`, best effort: "pid 4242 (python3)", or why that is unknown."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return "an unknown process"
    pids = {c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}
    for pid in sorted(pid for pid in pids if pid is not None):
        try:
            return f"pid {pid} ({psutil.Process(pid).name()})"
        except psutil.Error:
            return f"pid {pid}"
    return "a process this user cannot see" if pids else "an unknown process"


def in_use(host: str, port: int, how: str = "is in use", flag: str = "--port") -> PortUnavailable:
    return PortUnavailable(f"port {port} on {host} {how}, held by {port_holder(port)}; choose another with {flag}")


def check_port_free(host: str, port: int, flag: str = "--port") -> None:
    """Bind every address `host` resolves to, as uvicorn's asyncio server will (SO_REUSEADDR, IPv6 only on
    IPv6 sockets), and let go; raise PortUnavailable, naming `flag`, if the system refuses."""
    try:
        addresses = {(info[0], info[4]) for info in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)}
    except socket.gaierror as error:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {error.strerror}; check --host") from None
    with contextlib.ExitStack() as held:
        for family, address in sorted(addresses, key=str):
            sock = held.enter_context(socket.socket(family, socket.SOCK_STREAM))
            if os.name != "nt":  # on Windows SO_REUSEADDR would let two servers share the port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise in_use(host, port, flag=flag) from None
                raise PortUnavailable(
                    f"cannot listen on {host}:{port}: {error.strerror}; check --host and {flag}") from None
