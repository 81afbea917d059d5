"""precompile and the Piper engine agree on where a voice's cache lives: after precompile, the server builds nothing."""

from __future__ import annotations

import logging

import pytest

from ttspilot.accel.precompile import main as precompile
from ttspilot.config import TIERS


@pytest.mark.slow
def test_engine_loads_what_precompile_built(tmp_path, monkeypatch, caplog):
    piper = pytest.importorskip("ttspilot.engines.piper")
    pytest.importorskip("piper")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert precompile(["--tier", "cpu"]) == 0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ttspilot.accel"):
        engine = piper.PiperEngine.load(None, TIERS["cpu"])
    messages = [r.getMessage() for r in caplog.records if r.name == "ttspilot.accel"]
    assert any("optimized graph loaded from cache" in m for m in messages), messages
    assert not any("cached at" in m or "rebuilt" in m for m in messages), messages
    assert engine.info().flags["load_jit"].active is True
