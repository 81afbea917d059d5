"""--load_vllm on an engine or model without a vLLM path: the load refuses in one line and the server exits with it.

Piper has none, nor CosyVoice v1 (Engine.support_for(model_dir).vllm is False); the refusal comes
before anything heavy is imported, so it holds in the light install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, free_port
from ttspilot.config import config_from_flags
from ttspilot.engines import engine_class
from ttspilot.engines.base import EngineLoadError

VLLM_ON_GPU = config_from_flags("basic", load_vllm=True)
PIPER = "--load_vllm: the Piper engine has no vLLM path"


def cosyvoice_v1_folder(root: Path) -> Path:
    folder = root / "CosyVoice-300M"
    folder.mkdir()
    (folder / "cosyvoice.yaml").write_text("# v1 by its file name\n")
    return folder


def test_piper_refuses_before_loading():
    cls = engine_class(None)
    assert not cls.support_for(None).vllm
    with pytest.raises(EngineLoadError) as refused:
        cls.load(None, VLLM_ON_GPU)
    assert refused.value.reason == PIPER


def test_cosyvoice_v1_refuses_before_importing_upstream(tmp_path):
    folder = cosyvoice_v1_folder(tmp_path)
    cls = engine_class(folder)
    assert cls.name == "cosyvoice" and not cls.support_for(folder).vllm
    with pytest.raises(EngineLoadError) as refused:
        cls.load(folder, VLLM_ON_GPU)
    assert refused.value.reason == ("--load_vllm: CosyVoice-300M is a CosyVoice v1 model, which has no vLLM path "
                                    "(CosyVoice2 and 3 have one)")


@pytest.mark.parametrize("engine", ["piper", "cosyvoice-v1"])
def test_server_exits_with_the_refusal(tmp_path, engine):
    model = [] if engine == "piper" else ["--model_dir", str(cosyvoice_v1_folder(tmp_path))]
    done = subprocess.run([sys.executable, str(REPO / "fastapi_server.py"), "--tier", "basic", "--load_vllm",
                           "--port", str(free_port()), *model], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    expected = PIPER if engine == "piper" else "--load_vllm: CosyVoice-300M is a CosyVoice v1 model"
    assert f"engine failed to load: {expected}" in done.stderr
