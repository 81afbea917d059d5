"""wait_until_ready: the one readiness loop the launcher, the benchmarks and the tests share."""

from __future__ import annotations

import time

import pytest

from tests.support import fixed_json_server, free_port
from ttspilot.server.readiness import wait_until_ready


@pytest.fixture
def canary_failed_url():
    """/health as a server whose canary failed answers it: 503 with the reason, forever."""
    with fixed_json_server({"status": "not_ready", "reason": "canary failed: silent output"}, status=503) as url:
        yield url


def test_a_failed_canary_ends_the_wait_at_once(canary_failed_url):
    started = time.monotonic()
    assert wait_until_ready(canary_failed_url, 30) == "canary failed: silent output"
    assert time.monotonic() - started < 5


def test_an_exited_server_ends_the_wait_at_once():
    started = time.monotonic()
    assert wait_until_ready(f"http://127.0.0.1:{free_port()}", 30, lambda: "exited with code 3") == "exited with code 3"
    assert time.monotonic() - started < 5


def test_silence_times_out_with_the_last_answer():
    assert wait_until_ready(f"http://127.0.0.1:{free_port()}", 0.5) == "not ready after 0.5 s (no answer from /health)"


def test_a_ready_server_is_ready(server):
    assert wait_until_ready(server.url, 5) is None
