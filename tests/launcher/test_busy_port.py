"""A port someone else holds ends a launch at once, with one line; it is never a tier's failure."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.launcher.launchers import gone
from tests.support import RunningServer, fixed_json_server

pytestmark = pytest.mark.integration


@pytest.fixture
def start_foreign() -> Iterator[Callable[[int], None]]:
    """Put a server that is not the launcher's child, but says "ready" as an older ttspilot would, on a port."""
    with ExitStack() as servers:
        yield lambda port: servers.enter_context(fixed_json_server({"status": "ready", "engine": "piper"}, port=port))


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
def test_port_held_by_another_ttspilot_ends_the_launch_at_once(launch, server: RunningServer, script):
    port = httpx.URL(server.url).port
    launcher = launch(script, port=port)
    assert launcher.wait_exit(10) == 2
    log = launcher.log()
    assert re.fullmatch(
        rf"\S+ \[ttspilot\] port {port} on 127\.0\.0\.1 is in use, held by pid {server.process.pid} \(\S+\); "
        r"choose another with --port\n", log), log
    assert httpx.get(server.url + "/health").status_code == 200


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
def test_a_taken_grpc_port_ends_the_launch_at_once(launch, script):
    """--grpc_port passes through to the server; taken, it would fail every tier's start, so it is checked first."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        launcher = launch(script, "--grpc_port", str(port))
        assert launcher.wait_exit(10) == 2
    assert re.search(rf"port {port} on 127\.0\.0\.1 is in use, held by .*; choose another with --grpc_port\n$",
                     launcher.log()), launcher.log()


def test_port_taken_while_the_child_starts_is_a_port_conflict_not_a_ready_tier(launch, start_foreign):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu")
    child = launcher.wait_for_new_server(set())
    start_foreign(launcher.port)  # before the child, still loading its engine, can bind it
    assert launcher.wait_exit(30) == 2
    log = launcher.log()
    assert re.search(rf"port {launcher.port} on 127\.0\.0\.1 (answers for another server|is in use).*--port", log), log
    assert "ready in" not in log and "Traceback" not in log and "tier cpu failed" not in log
    assert gone(child, 5), "the launcher left its server child running"
