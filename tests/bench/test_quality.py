"""The quality guard on real audio from the cpu run: corrupted output is FAILED QUALITY and never recommended."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.bench.conftest import CpuRun
from ttspilot.bench.measure import Measurement
from ttspilot.bench.quality import MEL_DISTANCE_MAX_DB, assess, load_audio, mel_distance_db
from ttspilot.bench.report import FAILED_QUALITY, build_rows, recommend, table
from ttspilot.bench.runner import BenchConfig, Outcome, config_label
from ttspilot.config import TIERS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reference(cpu_run: CpuRun) -> Measurement:
    return Measurement.from_dict(json.loads((cpu_run.output_dir / "runs" / "cpu.result.json").read_text()))


def variant(reference: Measurement, tier: str, folder: Path, change: Callable[[np.ndarray], np.ndarray]) -> Measurement:
    """A measurement of `tier` whose audio is the reference's, changed; ten times faster, to tempt the recommender."""
    folder.mkdir()
    audio = {}
    for name, samples in load_audio(reference).items():
        audio[name] = str(folder / f"{name}.wav")
        soundfile.write(audio[name], change(samples).astype(np.float32), reference.sample_rate, subtype="FLOAT")
    faster = {name: [rtf / 10 for rtf in values] for name, values in reference.rtf.items()}
    return replace(reference, label=config_label(TIERS[tier]), tier=tier, audio=audio, rtf=faster)


def noisy(samples: np.ndarray) -> np.ndarray:
    return samples + np.random.default_rng(0).normal(0, 0.03, len(samples))


def with_nan(samples: np.ndarray) -> np.ndarray:
    samples = samples.copy()
    samples[len(samples) // 2 :] = np.nan
    return samples


def test_unchanged_audio_passes(reference, tmp_path):
    same = variant(reference, "jit", tmp_path / "same", lambda samples: samples)
    chosen, verdicts = assess([reference, same])
    assert chosen == "cpu" and verdicts["jit"].passed
    assert verdicts["jit"].mel_distance_db == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("change", "finding"),
    [(noisy, "log-mel distance"), (with_nan, "NaN"), (lambda samples: samples * 0.0, "silent"),
     (lambda samples: samples[: len(samples) * 2 // 3], "duration")],
    ids=["noise", "nan", "silence", "truncated"],
)
def test_corrupted_fast_tier_is_failed_quality_and_never_recommended(reference, tmp_path, change, finding):
    broken = variant(reference, "jit_fp16", tmp_path / "broken", change)
    chosen, verdicts = assess([broken, reference])
    assert chosen == "cpu"
    assert not verdicts["jit+fp16"].passed and finding in verdicts["jit+fp16"].reason
    outcomes = [Outcome(BenchConfig(TIERS[m.tier]), "ran", measurement=m) for m in (broken, reference)]
    rows = build_rows(outcomes, verdicts, chosen)
    assert [row.quality for row in rows] == [FAILED_QUALITY, "reference"]
    assert rows[0].rtf_median < rows[1].rtf_median
    best = recommend(rows)
    assert best.tier == "cpu" and "jit+fp16 (FAILED QUALITY)" in best.reason
    assert FAILED_QUALITY in table(rows)


def test_timing_shift_and_gain_are_forgiven_but_noise_is_not(reference):
    (samples, *_) = load_audio(reference).values()
    rate = reference.sample_rate
    shifted = np.concatenate([np.zeros(100, np.float32), samples])
    assert mel_distance_db(samples, shifted, rate) < MEL_DISTANCE_MAX_DB / 2
    assert mel_distance_db(samples, samples * 0.5, rate) == pytest.approx(0.0, abs=0.01)
    assert mel_distance_db(samples, noisy(samples), rate) > MEL_DISTANCE_MAX_DB
