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


def test_our_own_server_on_the_port_is_reported_running_not_killed(server):
    port = int(server.url.rsplit(":", 1)[1])
    finding = check_port("127.0.0.1", port)
    assert finding.status is Status.PASS, finding.detail
    assert finding.detail.startswith(f"ttspilot server already running on port {port} (pid {server.process.pid}, ")
    assert "engine piper, tier cpu" in finding.detail and f"--port {port + 1}" in finding.detail
    assert "kill" not in finding.detail


def test_our_server_still_loading_is_a_warning_with_its_reason():
    def busy(host, port):
        raise OSError(errno.EADDRINUSE, "Address already in use")

    loading = {"status": "not_ready", "engine": "piper", "model": "joe", "tier": "cpu", "reason": "canary running"}
    finding = check_port("127.0.0.1", 9234, bind=busy, owner=lambda port: "pid 4321 (python fastapi_server.py)",
                         health=lambda host, port: loading)
    assert finding.status is Status.WARN
    assert finding.detail == (
        "ttspilot server on port 9234 (pid 4321, engine piper, tier cpu) is not ready: canary running"
    )
    assert "kill 4321" in finding.fix


def test_another_http_service_on_the_port_still_fails():
    """Something that answers /health, but not as ttspilot does, is a conflict as before."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class OtherHealth(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), OtherHealth) as other:
        Thread(target=other.serve_forever, daemon=True).start()
        try:
            finding = check_port("127.0.0.1", other.server_address[1])
        finally:
            other.shutdown()
    assert finding.status is Status.FAIL and "already in use" in finding.detail
