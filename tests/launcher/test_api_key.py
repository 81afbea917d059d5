"""A server that needs an API key: the launchers authenticate their own health checks and canary."""

from __future__ import annotations

import httpx
import psutil
import pytest

from tests.launcher.launchers import speaks

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
def test_launcher_comes_up_with_the_key_from_the_environment(launch, script):
    launcher = launch(script, env={"TTSPILOT_API_KEY": "launch-secret"})
    launcher.wait_for(r"tier \w+: ready in")
    response = httpx.get(launcher.url + "/inference_sft", params={"tts_text": "Who are you?"}, timeout=60)
    assert response.status_code == 401
    speaks(launcher.url, headers={"X-API-Key": "launch-secret"})
    assert launcher.stop() == 0


def test_launcher_comes_up_with_the_key_flag_and_keeps_it_off_the_server_command_line(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--api_key", "flag-secret")
    launcher.wait_for(r"tier cpu: ready in")
    assert httpx.get(launcher.url + "/inference_sft", params={"tts_text": "Hi."}, timeout=60).status_code == 401
    speaks(launcher.url, headers={"Authorization": "Bearer flag-secret"})
    for pid in launcher.server_pids():
        assert "flag-secret" not in " ".join(psutil.Process(pid).cmdline())
    assert launcher.stop() == 0
