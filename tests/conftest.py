"""Shared fixtures: a real server process on loopback, shared by the HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server([], tmp_path_factory.mktemp("server") / "server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http

