"""/health confirms the launch token to whoever presents it, and never shows it."""

from __future__ import annotations

import httpx
import pytest

from tests.support import start_server, stop_server

pytestmark = pytest.mark.integration


def test_health_confirms_the_launch_token_without_revealing_it(tmp_path):
    server = start_server([], tmp_path / "server.log", env={"TTSPILOT_LAUNCH_TOKEN": "this-launch"})
    try:
        unasked = httpx.get(server.url + "/health")
        right = httpx.get(server.url + "/health", headers={"X-Launch-Token": "this-launch"})
        wrong = httpx.get(server.url + "/health", headers={"X-Launch-Token": "another-launch"})
    finally:
        stop_server(server)
    assert "launch_token" not in unasked.json() and "this-launch" not in unasked.text
    assert right.json()["launch_token"] == "match"
    assert wrong.json()["launch_token"] == "mismatch" and "this-launch" not in wrong.text
