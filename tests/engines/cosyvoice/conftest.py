"""The CosyVoice environment's python for the tests here, built into the cache on first use."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cosyvoice_env import EnvironmentBuildError, env_python
from tests.launcher.launchers import Launcher
from tests.support import REPO


@pytest.fixture(scope="session")
def cosyvoice_python(request: pytest.FixtureRequest) -> Path:
    """Skips every CosyVoice test, loudly, when the environment can be neither found nor built."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        """Straight to the terminal: pytest would otherwise capture it and show it only on a failure."""
        if reporter is None or capture is None:
            print(line, file=sys.stderr)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line, yellow=True, bold=True)

    try:
        return env_python(log=say)
    except (EnvironmentBuildError, OSError) as error:
        reason = f"CosyVoice test env unavailable, CosyVoice tests SKIPPED: {error}"
        say(f"WARNING: {reason}")
        pytest.skip(reason)


@pytest.fixture
def cosyvoice_launch(cosyvoice_python: Path, tmp_path: Path) -> Iterator[Callable[..., Launcher]]:
    """Start a launcher script with the CosyVoice python (real process); it and its servers end with the test."""
    started: list[Launcher] = []

    def start(script: str, *args: str, env: dict[str, str] | None = None) -> Launcher:
        launcher = Launcher(script, list(args), tmp_path / f"launcher{len(started)}.log",
                            env={"PYTHONPATH": str(REPO), **(env or {})}, python=cosyvoice_python)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.end()
