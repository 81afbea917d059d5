"""The `launch` fixture: start launcher scripts as real processes and make sure none outlives its test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.launcher.launchers import Launcher


@pytest.fixture
def launch(tmp_path) -> Iterator[Callable[..., Launcher]]:
    started: list[Launcher] = []

    def start(script: str, *args: str, port: int | None = None, env: dict[str, str] | None = None) -> Launcher:
        launcher = Launcher(script, list(args), tmp_path / f"launcher{len(started)}.log", port=port, env=env)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.end()
