import io

import numpy as np
import pytest
import soundfile

from ttspilot.canary import CANARY_TEXT, CLIP_FRACTION, judge_audio
from ttspilot.config import TIERS
from ttspilot.engines import load_engine

RATE = 22050


def speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_plausible_audio_passes():
    result = judge_audio(speech_like(2.5), RATE)
    assert result.passed and result.fault is None


def test_nan_fails():
    audio = speech_like(2.5)
    audio[100] = np.nan
    result = judge_audio(audio, RATE)
    assert not result.passed and "NaN" in result.reason and result.fault == "non_finite"


def test_silence_fails():
    result = judge_audio(np.zeros(int(2.5 * RATE), dtype=np.float32), RATE)
    assert not result.passed and "silent" in result.reason and result.fault == "silent"


def test_empty_fails():
    result = judge_audio(np.zeros(0, dtype=np.float32), RATE)
    assert not result.passed and result.fault == "empty"


def test_truncated_or_runaway_duration_fails():
    assert "duration" in judge_audio(speech_like(0.2), RATE).reason
    assert judge_audio(speech_like(len(CANARY_TEXT) * 0.5), RATE).fault == "duration"


def test_overdriven_audio_clipped_by_the_engine_fails():
    """What an engine hands on from a model that overflows: its own clip to [-1, 1] leaves runs of full scale."""
    result = judge_audio(np.clip(speech_like(2.5) * 20, -1.0, 1.0), RATE)
    assert not result.passed and result.fault == "clipped"
    assert result.reason.startswith("clipped output: ") and "of samples at full scale" in result.reason


def test_clipping_threshold_is_a_fraction_of_samples():
    audio = speech_like(2.5)
    over = int(audio.size * CLIP_FRACTION)
    audio[:over] = 1.0  # exactly the allowed share: passes
    assert judge_audio(audio, RATE).passed
    audio[over:over + 2] = -1.0
    assert judge_audio(audio, RATE).fault == "clipped"


def test_full_scale_after_a_16_bit_round_trip_counts_as_clipped():
    audio = np.clip(speech_like(2.5) * 20, -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, RATE, format="WAV", subtype="PCM_16")
    decoded, _ = soundfile.read(io.BytesIO(buffer.getvalue()), dtype="float32")
    assert decoded.max() < 1.0 and judge_audio(decoded, RATE).fault == "clipped"


@pytest.fixture(scope="module")
def piper():
    return load_engine(None, TIERS["cpu"])


@pytest.mark.parametrize("text", [CANARY_TEXT, "Hello world! This is a LOUD test, with shouting: AAAH!"])
def test_real_peak_normalised_speech_passes(piper, text):
    """Piper peak-normalises each sentence: a sample or so at full scale is speech, not clipping."""
    engine = piper
    audio = np.concatenate(list(engine.synthesize(text, engine.default_voice)))
    assert np.abs(audio).max() >= 0.999  # the voice does reach full scale
    result = judge_audio(audio, engine.sample_rate, text)
    assert result.passed, result.reason
