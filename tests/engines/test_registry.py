"""The engine registry: the folder's files pick the engine; its static support plans tiers without loading it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO
from ttspilot import engines
from ttspilot.accel import precompile
from ttspilot.config import config_from_flags
from ttspilot.engines import engine_class, engine_support, load_engine
from ttspilot.engines.base import EngineInfo, EngineLoadError, FlagState
from ttspilot.engines.piper import PiperEngine, embedded_voice
from ttspilot.launcher import optimized


@pytest.fixture
def cosyvoice_folder(tmp_path):
    """Only the file names matter for matching and planning: nothing here is loaded."""
    (tmp_path / "cosyvoice2.yaml").write_text("sample_rate: 24000\n")
    return tmp_path


def test_embedded_voice_and_piper_folders_get_piper(tmp_path):
    voice = embedded_voice()
    shutil.copy(voice.config, tmp_path / "copy.onnx.json")
    (tmp_path / "copy.onnx").symlink_to(voice.model)
    assert engine_class(None) is PiperEngine and engine_class(tmp_path) is PiperEngine
    assert engine_support(tmp_path).runtime == "onnxruntime"
    assert PiperEngine.model_files(tmp_path) == [tmp_path / "copy.onnx", voice.model]


def test_unknown_and_missing_folders_say_what_was_expected(tmp_path):
    with pytest.raises(EngineLoadError, match=r"no engine recognises .*: expected Piper voices \(\*\.onnx"):
        engine_class(tmp_path)
    with pytest.raises(EngineLoadError, match="does not exist"):
        load_engine(tmp_path / "missing", config_from_flags("cpu"))


def test_a_cosyvoice_folder_is_recognised_and_planned_without_torch(cosyvoice_folder):
    """The main venv has neither torch nor the official code: matching and planning still work, loading says why not."""
    assert engine_class(cosyvoice_folder).name == "cosyvoice"
    assert engine_support(cosyvoice_folder).runtime == "torch"
    assert [path.name for path in engine_class(cosyvoice_folder).model_files(cosyvoice_folder)] == [
        "cosyvoice2.yaml", "llm.pt", "flow.pt", "hift.pt"]
    with pytest.raises(EngineLoadError, match="CosyVoice"):
        load_engine(cosyvoice_folder, config_from_flags("cpu"))


def test_an_engine_that_cannot_import_is_skipped_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "ENGINE_MODULES", ("ttspilot.engines.not_installed", *engines.ENGINE_MODULES))
    assert engine_class(None) is PiperEngine
    with pytest.raises(EngineLoadError, match="not_installed unavailable: No module named"):
        engine_class(tmp_path)


def test_matching_a_folder_needs_neither_onnxruntime_nor_piper():
    code = ("import sys; sys.modules['onnxruntime'] = sys.modules['piper'] = None\n"
            "from ttspilot.engines import engine_support; print(engine_support(None).name)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "piper"


def test_launcher_plans_with_the_engines_support(cosyvoice_folder, capsys):
    """A torch engine on a simulated GPU: every GPU tier is planned, and each server command is printed."""
    assert optimized.main(["--dry_run", "--simulate_gpu", "RTX 4090:24:8.9", "--model_dir", str(cosyvoice_folder)]) == 0
    out = capsys.readouterr().out
    assert "1. full + vLLM:" in out and "2. full:" in out and "cpu:" in out  # CosyVoice2 has a vLLM path
    assert f"--model_dir {cosyvoice_folder}" in out


def test_launcher_refuses_a_folder_no_engine_serves(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", "--model_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 2
    assert "--model_dir: no engine recognises" in result.stderr


def test_precompile_asks_engines_off_onnxruntime_for_their_files(cosyvoice_folder, capsys):
    """The cpu tier opens no compiled CosyVoice file: nothing to build, no torch needed to say so."""
    assert precompile.main(["--model_dir", str(cosyvoice_folder), "--tier", "cpu"]) == precompile.EXIT_OK
    assert "the asked tiers open no compiled file of this engine" in capsys.readouterr().out


def test_engine_info_round_trips_through_json():
    engine = PiperEngine.load(None, config_from_flags("cpu"))
    info = engine.info()
    assert info.tier == "cpu" and info.device == "cpu" and info.voice_count == 1
    assert info.models[0].name == "en_US-joe-medium" and len(info.models[0].session_load_s) == info.concurrency
    assert "load_trt" not in info.inactive()  # the cpu tier does not ask for TensorRT
    data = json.loads(json.dumps(info.as_dict()))
    assert data["trt_concurrent"] == info.concurrency and data["flags"]["fp16"]["active"] is False
    again = EngineInfo.from_dict(data)
    assert again.as_dict() == info.as_dict()


def test_inactive_lists_only_flags_that_were_asked_for():
    info = EngineInfo(
        engine="piper", requested=config_from_flags("jit_fp16"), device="cuda", providers=("CUDAExecutionProvider",),
        flags={"load_trt": FlagState(False, "not requested by tier"), "load_jit": FlagState(True, "cached graph"),
               "fp16": FlagState(False, "CUDA provider has no FP16 switch")},
        concurrency=1, sample_rate=22050, voice_count=1,
    )
    assert info.inactive() == {"fp16": "CUDA provider has no FP16 switch"}
