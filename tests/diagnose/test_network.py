"""Server port: free, taken (by whom), privileged, not local."""

from __future__ import annotations

import errno
import socket

from tests.support import free_port
from ttspilot.diagnose.network import check_port
from ttspilot.diagnose.result import Status


def test_a_free_port_passes():
    port = free_port()
    finding = check_port("127.0.0.1", port)
    assert finding.status is Status.PASS and finding.detail == f"127.0.0.1:{port} is free"


def test_a_taken_port_fails_and_names_another():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        finding = check_port("127.0.0.1", port)
    assert finding.status is Status.FAIL and "already in use" in finding.detail
    assert f"--port {port + 1}" in finding.fix


def test_the_holder_is_named_when_known():
    def busy(host, port):
        raise OSError(errno.EADDRINUSE, "Address already in use")

    finding = check_port("127.0.0.1", 9234, bind=busy, owner=lambda port: "pid 4321 (python fastapi_server.py)")
    assert "by pid 4321 (python fastapi_server.py)" in finding.detail
    assert finding.fix.startswith("stop it (kill 4321)")


def test_privileged_and_foreign_addresses():
    def denied(host, port):
        raise OSError(errno.EACCES, "Permission denied")

    def foreign(host, port):
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    assert ">= 1024" in check_port("0.0.0.0", 80, bind=denied).fix
    assert "--host 0.0.0.0" in check_port("10.9.9.9", 9234, bind=foreign).fix
