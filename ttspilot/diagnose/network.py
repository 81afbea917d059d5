"""Is the server port free? Bound the way uvicorn binds it (SO_REUSEADDR), so a port in TIME_WAIT counts as free.

A port held by a ttspilot server (its /health answers with our fields) is reported as that
server running, not as a conflict to kill.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import httpx

from ttspilot.diagnose.result import Finding, failed, passed, warned

HEALTH_FIELDS = frozenset({"status", "engine", "tier"})  # what every ttspilot /health answer carries
LOCAL_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # a wildcard bind is reached on loopback


def port_owner(port: int) -> str | None:
    """'pid 1234 (python fastapi_server.py ...)' for the process listening on `port`, when this user may know."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    command = " ".join(psutil.Process(conn.pid).cmdline()[:4])
                except (psutil.Error, OSError):
                    command = "?"
                return f"pid {conn.pid} ({command})"
    except Exception:  # AccessDenied without root on some systems
        return None
    return None


def ttspilot_health(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The /health answer of a ttspilot server on `host:port`; None when something else (or nothing) answers."""
    address = LOCAL_FOR.get(host, host)
    url_host = f"[{address}]" if ":" in address else address
    try:
        response = httpx.get(f"http://{url_host}:{port}/health", timeout=timeout)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and HEALTH_FIELDS <= body.keys() else None


def running_server(host: str, port: int, health: dict[str, Any], holder: str | None, other: int) -> Finding:
    """The finding for a port held by our own server: fine when it is ready, a warning while it is not."""
    who = ", ".join(filter(None, [" ".join(holder.split()[:2]) if holder else None,
                                  f"engine {health['engine']}", f"tier {health['tier']}"]))
    data = {"host": host, "port": port, "owner": holder, "health": health}
    if health["status"] == "ready":
        return passed(f"ttspilot server already running on port {port} ({who}); "
                      f"a second server needs another port, e.g. --port {other}", **data)
    reason = health.get("reason") or health["status"]
    stop = f"kill {holder.split()[1]}" if holder else f"ss -ltnp 'sport = :{port}' names it"
    return warned(f"ttspilot server on port {port} ({who}) is not ready: {reason}",
                  f"wait for it (curl http://{host}:{port}/health), or stop it ({stop})", **data)


def try_bind(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1)


def check_port(host: str, port: int, *, bind: Callable[[str, int], None] = try_bind,
               owner: Callable[[int], str | None] = port_owner,
               health: Callable[[str, int], dict[str, Any] | None] = ttspilot_health) -> Finding:
    where = f"{host}:{port}"
    data = {"host": host, "port": port}
    other = port + 1 if port < 65535 else 9234
    try:
        bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            holder = owner(port)
            ours = health(host, port)
            if ours is not None:
                return running_server(host, port, ours, holder, other)
            stop = f"stop it (kill {holder.split()[1]})" if holder else f"find it with: ss -ltnp 'sport = :{port}'"
            return failed(f"{where} is already in use" + (f" by {holder}" if holder else ""),
                          f"{stop}, or start on another port: python start_optimized_server.py --port {other}",
                          owner=holder, **data)
        if exc.errno in (errno.EACCES, errno.EPERM):
            return failed(f"{where}: permission denied (ports below 1024 need root)",
                          f"use a port >= 1024, e.g. --port {9234 if port != 9234 else 9235}", **data)
        if exc.errno == errno.EADDRNOTAVAIL:
            return failed(f"{where}: {host} is not an address of this machine",
                          "use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces)", **data)
        return failed(f"{where}: cannot bind ({exc})", f"try another port: --port {other}", **data)
    except OverflowError:
        return failed(f"{where}: not a valid port", "use a port between 1024 and 65535", **data)
    return passed(f"{where} is free", **data)
