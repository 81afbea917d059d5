"""However the launcher ends, its server ends too; a canary answer that is not audio is a failure, not a crash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.launcher.launchers import gone
from tests.support import fixed_json_server
from ttspilot.launcher.child import ServerChild

pytestmark = pytest.mark.integration


def test_killing_the_launcher_ends_its_server(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu")
    launcher.wait_for(r"tier cpu: ready in")
    [server] = launcher.server_pids()
    launcher.kill()  # SIGKILL: no handler, no finally
    assert gone(server, 5), "the server outlived its launcher"


def test_killing_the_launcher_while_its_server_loads_ends_the_server(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu")
    server = launcher.wait_for_new_server(set())
    launcher.kill()
    assert gone(server, 5), "the server outlived its launcher"


@pytest.fixture
def json_server() -> Iterator[str]:
    with fixed_json_server({"status": "ok"}) as url:
        yield url


def test_canary_answer_that_is_not_audio_is_a_failure_with_a_reason(json_server):
    failure = ServerChild([], json_server).canary()
    assert failure is not None and failure.canary_fault is None
    assert failure.reason.startswith("canary answer is not audio (application/json, 16 bytes)")
