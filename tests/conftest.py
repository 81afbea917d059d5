"""Shared fixtures: a real server process on loopback, shared by the HTTP tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from tests.support import RunningServer, start_server, stop_server


def pytest_configure(config: pytest.Config) -> None:
    """Compiled caches go to one throwaway folder per test run, shared by every server the tests start."""
    if "TTSPILOT_TEST_KEEP_CACHE" not in os.environ:
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ttspilot-test-cache-")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server([], tmp_path_factory.mktemp("server") / "server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http

