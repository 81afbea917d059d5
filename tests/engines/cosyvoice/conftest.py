"""The CosyVoice environment's python for the tests here, built into the cache on first use."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cosyvoice_env import EnvironmentBuildError, env_python


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
