"""Is the server port free? Bound the way uvicorn binds it (SO_REUSEADDR), so a port in TIME_WAIT counts as free."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from ttspilot.diagnose.result import Finding, failed, passed


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


def try_bind(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1)


def check_port(host: str, port: int, *, bind: Callable[[str, int], None] = try_bind,
               owner: Callable[[int], str | None] = port_owner) -> Finding:
    where = f"{host}:{port}"
    data = {"host": host, "port": port}
    other = port + 1 if port < 65535 else 9234
    try:
        bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            holder = owner(port)
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
