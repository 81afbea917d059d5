"""Launchers started with the CosyVoice environment's python (`cosyvoice_python`, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.launcher.launchers import Launcher
from tests.support import REPO


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
