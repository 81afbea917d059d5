"""Shared fixtures: a real server process on loopback, shared by the HTTP tests; the CosyVoice environment's python."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import Browser, chromium, missing, screenshot_dir
from tests.cosyvoice_env import EnvironmentBuildError, env_python
from tests.engines.cosyvoice.tiny_models import TINY_CACHE_ENV
from tests.support import RunningServer, say, start_server, stop_server


def pytest_configure(config: pytest.Config) -> None:
    """Compiled caches go to one throwaway folder per test run, shared by every server the tests start."""
    if "TTSPILOT_TEST_KEEP_CACHE" not in os.environ:
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ttspilot-test-cache-")
    if not hasattr(config, "workerinput"):  # the run's first process: its xdist workers inherit the variable
        os.environ[TINY_CACHE_ENV] = tempfile.mkdtemp(prefix="ttspilot-tiny-models-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The tiny CosyVoice models made for this run go when the run ends (tests/engines/cosyvoice/tiny_models.py)."""
    if not hasattr(config, "workerinput") and TINY_CACHE_ENV in os.environ:
        shutil.rmtree(os.environ.pop(TINY_CACHE_ENV), ignore_errors=True)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server([], tmp_path_factory.mktemp("server") / "server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def cosyvoice_python(request: pytest.FixtureRequest) -> Path:
    """Skips every CosyVoice test, loudly, when the environment can be neither found nor built."""
    try:
        return env_python(log=lambda line: say(request.config, line))
    except (EnvironmentBuildError, OSError) as error:
        reason = f"CosyVoice test env unavailable, CosyVoice tests SKIPPED: {error}"
        say(request.config, f"WARNING: {reason}")
        pytest.skip(reason)



@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium per module; the web page tests skip, loudly, when it cannot run here."""
    reason = missing()
    if reason is not None:
        say(request.config, f"WARNING: web page tests SKIPPED: {reason}")
        pytest.skip(f"web page tests SKIPPED: {reason}")
    say(request.config, f"web page screenshots: {screenshot_dir()}")
    with chromium(tmp_path_factory.mktemp("downloads")) as opened:
        yield opened
