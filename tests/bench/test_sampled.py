"""Engines that sample (CosyVoice): the quality guard checks each tier's own audio and says it did not compare;
the load options reach the measuring child as the server would build them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from ttspilot.bench.cli import server_load_options
from ttspilot.bench.measure import Measurement, MeasureSpec
from ttspilot.bench.quality import assess
from ttspilot.bench.runner import all_configurations, with_skip_reasons
from ttspilot.config import TIERS
from ttspilot.engines.base import EngineSupport, LoadOptions
from ttspilot.hardware import HardwareProfile

RATE = 24000
TEXTS = {"short": "The lighthouse keeper climbed the stairs."}  # the canary accepts 0.8-10 s for it


def tone(seconds: float, hz: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def measured(tier: str, audio: np.ndarray, folder: Path, deterministic: bool) -> Measurement:
    folder.mkdir()
    path = folder / "short.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    return Measurement(tier, tier, rtf={"short": [0.5]}, first_audio_s={"short": [0.2]}, sample_rate=RATE,
                       texts=TEXTS, audio={"short": str(path)}, deterministic=deterministic, streaming=True)


def test_sampled_tiers_are_judged_on_their_own_audio_and_the_verdict_says_why(tmp_path):
    reference = measured("cpu", tone(2.0, 220), tmp_path / "cpu", deterministic=False)
    other = measured("jit", tone(1.2, 900), tmp_path / "jit", deterministic=False)  # other length, other sound
    chosen, verdicts = assess([reference, other])
    assert chosen == "cpu"
    assert verdicts["jit"].passed and verdicts["jit"].mel_distance_db is None
    assert "sampled synthesis" in verdicts["jit"].reason and "not compared with cpu" in verdicts["jit"].reason


def test_a_deterministic_engines_tiers_are_still_compared_with_the_reference(tmp_path):
    reference = measured("cpu", tone(2.0, 220), tmp_path / "cpu", deterministic=True)
    other = measured("jit", tone(1.2, 900), tmp_path / "jit", deterministic=True)
    _, verdicts = assess([reference, other])
    assert not verdicts["jit"].passed and "duration" in verdicts["jit"].reason


@pytest.mark.parametrize(("audio", "finding"), [
    (np.full(RATE * 2, np.nan, np.float32), "NaN"),
    (np.zeros(RATE * 2, np.float32), "silent"),
    (tone(0.2, 220), "duration"),
], ids=["nan", "silence", "too-short"])
def test_a_sampled_tier_with_broken_audio_still_fails(tmp_path, audio, finding):
    reference = measured("cpu", tone(2.0, 220), tmp_path / "cpu", deterministic=False)
    broken = measured("fp16", audio, tmp_path / "fp16", deterministic=False)
    _, verdicts = assess([reference, broken])
    assert not verdicts["fp16"].passed and finding in verdicts["fp16"].reason


def test_spec_carries_the_load_options_to_the_child(tmp_path):
    load = LoadOptions(cosyvoice_root=tmp_path / "CosyVoice", voices_file=tmp_path / "voices.json",
                       vllm_gpu_memory_utilization=0.4)
    spec = MeasureSpec("cpu", TIERS["cpu"], tmp_path / "audio", model_dir=tmp_path / "model", load=load)
    assert MeasureSpec.from_json(spec.to_json()) == spec
    assert MeasureSpec.from_json(MeasureSpec("cpu", TIERS["cpu"], tmp_path).to_json()).load == LoadOptions()


def test_load_options_take_the_flag_else_the_servers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSPILOT_COSYVOICE_ROOT", str(tmp_path / "from-env"))
    monkeypatch.delenv("TTSPILOT_VOICES", raising=False)
    assert server_load_options() == LoadOptions(tmp_path / "from-env")
    assert server_load_options(tmp_path / "flag").cosyvoice_root == tmp_path / "flag"
    monkeypatch.delenv("TTSPILOT_COSYVOICE_ROOT")
    assert server_load_options().cosyvoice_root is None


def test_a_path_the_model_lacks_is_skipped_with_the_policys_wording():
    cosyvoice3 = EngineSupport(trt=True, jit=False, fp16=True, name="cosyvoice", runtime="torch", vllm=True)
    rows = {row.label: row for row in with_skip_reasons(all_configurations(), HardwareProfile(), cosyvoice3)}
    assert rows["cpu"].skip_reason is None
    assert rows["cpu+jit"].skip_reason == "engine cosyvoice has no JIT path"
    assert "no usable GPU" in rows["jit+fp16"].skip_reason
