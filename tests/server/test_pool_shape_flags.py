"""--tier with a pool shape of its own: the server runs it and /performance_info shows the shape really used."""

from __future__ import annotations

import httpx
import pytest

from tests.support import start_server, stop_server

pytestmark = pytest.mark.integration


def test_shape_flags_override_the_tier_and_are_reported(tmp_path):
    server = start_server(["--tier", "cpu", "--trt_concurrent", "2", "--cpu_threads", "1"], tmp_path / "server.log")
    try:
        info = httpx.get(f"{server.url}/performance_info", timeout=30).json()
    finally:
        stop_server(server)
    config = info["effective_config"]
    assert config["tier"] == "cpu"
    assert (config["trt_concurrent"], config["cpu_threads"]) == (2, 1)  # read back from the sessions
    assert (config["requested"]["trt_concurrent"], config["requested"]["cpu_threads"]) == (2, 1)
    assert info["pipeline"]["workers"] == 2
    assert "2 session(s) x 1 intra-op thread(s)" in server.log()
